"""Events: what happened (stock, syncs, connections, webhook endpoints), recorded once and fanned out."""
