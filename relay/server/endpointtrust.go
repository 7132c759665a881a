package server

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/endpointtrust"
	"github.com/deskside/deskside/relay/store"
)

// trustEvery is the least time between two stored endpoint trust changes
// of one stream: an agent sends one only when its policy changed.
const trustEvery = time.Second

// endpointTrust handles an AgentMessage.endpoint_trust: the agent's
// policy or pin changed while connected.
func (c *agentConn) endpointTrust(msgID uint64, t *desksidev1.EndpointTrust) error {
	if wait := trustEvery - c.s.cfg.Now().Sub(c.trustAt); wait > 0 {
		c.s.metrics.rejected.WithLabelValues("rate_limited").Inc()
		return c.ack(msgID, &desksidev1.Ack{RetryAfter: durationpb.New(wait), Error: &desksidev1.AckError{
			Code: desksidev1.AckErrorCode_ACK_ERROR_CODE_RATE_LIMITED, Message: fmt.Sprintf("endpoint trust: at most one change per %s; send it again in %s", trustEvery, wait.Round(time.Millisecond)),
		}})
	}
	if t == nil {
		t = &desksidev1.EndpointTrust{}
	}
	if err := c.storeTrust(endpointtrust.Clean(t)); err != nil {
		return c.reject(msgID, "endpoint trust", err)
	}
	return c.ack(msgID, &desksidev1.Ack{Accepted: true})
}

// storeTrust stores the cleaned report t when it differs from the
// device's stored one and audits the change (device.endpoint_policy, old
// → new). A first report is audited when it restricts anything.
func (c *agentConn) storeTrust(t *desksidev1.EndpointTrust) error {
	s := c.s
	ctx := context.WithoutCancel(c.ctx)
	dev, err := s.store.GetDevice(ctx, c.id)
	if err != nil {
		return fmt.Errorf("%w: %v", errStore, err)
	}
	data := endpointtrust.Marshal(t)
	if dev.EndpointTrust != nil && bytes.Equal(dev.EndpointTrust, data) {
		return nil
	}
	if err := s.store.SetEndpointTrust(ctx, c.id, data); err != nil {
		return fmt.Errorf("%w: %v", errStore, err)
	}
	c.trustAt = s.cfg.Now()
	old := endpointtrust.Parse(dev.EndpointTrust)
	if old != nil || !proto.Equal(t, &desksidev1.EndpointTrust{}) {
		s.audit(ctx, "device:"+c.id, "device.endpoint_policy", c.id, endpointtrust.Describe(old)+" → "+endpointtrust.Describe(t))
	}
	s.log.Info("endpoint trust reported", logKeyDevice, c.id, "trust", endpointtrust.Describe(t))
	s.deviceChanged(ctx, c.id)
	return nil
}

// endpointRefusal is why device d refuses op by its agent's last report,
// as the request's error ("" when it does not): the relay answers it
// without sending the request, which the agent would refuse anyway.
func endpointRefusal(d store.Device, op endpointtrust.Op) string {
	r := endpointtrust.Refusal(endpointtrust.Parse(d.EndpointTrust), op)
	if r == "" {
		return ""
	}
	return "refused by the device: " + r + " (as the device last reported; the relay did not send the request)"
}
