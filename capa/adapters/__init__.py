"""Adapters between capa and the outside world: store targets, storage back ends."""
