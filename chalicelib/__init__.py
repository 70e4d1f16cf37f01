"""fila's Lambda code: everything here ships in the deployment package, and nothing else does."""
