-- What the device's agent last reported it enforces whatever the relay
-- says (a marshalled deskside.v1.EndpointTrust: pinned organisation key,
-- local policy, groups); NULL until it reports one.
ALTER TABLE devices ADD COLUMN endpoint_trust BYTEA;
