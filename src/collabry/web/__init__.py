"""HTTP plumbing shared by the gateway and the engine: errors, routes with schemas, probes."""
