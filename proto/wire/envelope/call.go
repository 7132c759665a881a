package envelope

import (
	"context"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// MetadataKey is the gRPC metadata key that carries a console call's
// EnvelopeCall to the relay (binary: gRPC base64-encodes it on the wire).
const MetadataKey = "deskside-envelope-bin"

// CallValue is the MetadataKey value for a call sealed by env for
// deviceIDs. A request to more than one device also carries the sorted
// device list, from which the relay builds the Merkle tree and hands each
// agent its proof; one device needs none.
func CallValue(env *desksidev1.SignedEnvelope, deviceIDs []string) (string, error) {
	call := &desksidev1.EnvelopeCall{Envelope: env}
	if len(deviceIDs) > 1 {
		call.Devices = SortedIDs(deviceIDs)
	}
	raw, err := proto.Marshal(call)
	if err != nil {
		return "", err
	}
	return string(raw), nil
}

// WithCall returns ctx carrying the call sealed by env for deviceIDs in
// its outgoing gRPC metadata, as the CLI and the console send it.
func WithCall(ctx context.Context, env *desksidev1.SignedEnvelope, deviceIDs []string) (context.Context, error) {
	v, err := CallValue(env, deviceIDs)
	if err != nil {
		return ctx, err
	}
	return metadata.AppendToOutgoingContext(ctx, MetadataKey, v), nil
}
