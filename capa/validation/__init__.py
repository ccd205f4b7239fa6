"""Validation pack: requirement catalogue, executable evidence and traceability report."""
