"""Shared pytest configuration for every suite."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register each requirement tag of the validation catalogue, and `cli`, as a marker."""
    from capa.validation.catalogue import load_catalogue

    catalogue = load_catalogue()
    for requirement in catalogue.requirements:
        config.addinivalue_line("markers", f"{requirement.id}: evidence for {requirement.source}")
    for tag in catalogue.extra_tags:
        config.addinivalue_line("markers", f"{tag}: feature tag that names no requirement")
