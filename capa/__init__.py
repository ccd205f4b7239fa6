"""capa: event-sourced nonconformities and corrective actions with a verifiable audit trail."""

__version__ = "0.1.0"
