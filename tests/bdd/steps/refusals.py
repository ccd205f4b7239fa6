"""Steps that examine a refusal, and that a refused command recorded nothing."""

from __future__ import annotations

from pytest_bdd import parsers, then

from capa.domain.errors import IntegrityFailure, InvalidInput, NotFound, NotPermitted, RuleViolation
from tests.bdd.world import World

# -- refusals ---------------------------------------------------------------------------------


@then(parsers.parse('the command is refused under rule "{rule}"'))
def refused_under_rule(world: World, rule: str) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, RuleViolation), f"refused, but not by a rule: {refusal}"
    assert refusal.rule == rule, f"refused by {refusal.rule}, not {rule}: {refusal}"
    assert f"refused ({rule})" in str(refusal)


@then("the command is refused as invalid input")
def refused_as_invalid(world: World) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, InvalidInput), f"refused, but not as invalid input: {refusal}"


@then("the command is refused as an integrity failure")
def refused_as_integrity_failure(world: World) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, IntegrityFailure), f"refused, but not for integrity: {refusal}"


@then("the command is refused as not found")
def refused_as_not_found(world: World) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, NotFound), f"refused, but not as not found: {refusal}"


@then("the command is refused as not permitted")
def refused_as_not_permitted(world: World) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, NotPermitted), f"refused, but not as not permitted: {refusal}"
    assert refusal.rule is None, f"refused by rule {refusal.rule}: {refusal}"


@then("the command is refused because nobody is identified as acting")
def refused_as_anonymous(world: World) -> None:
    refusal = world.take_refusal()
    assert isinstance(refusal, NotPermitted), f"refused, but not for want of a user: {refusal}"


@then("nothing was recorded")
def nothing_recorded(world: World) -> None:
    world.expect_no_refusal()
    assert world.events_before is not None, "no command was attempted"
    assert world.events() == world.events_before
