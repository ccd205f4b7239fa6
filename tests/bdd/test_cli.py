"""Scenarios of features/cli, driving the real `capa` command in a child process.

The steps are in tests/bdd/steps/cli.py."""

from pytest_bdd import scenarios

scenarios("cli/command_line.feature")
