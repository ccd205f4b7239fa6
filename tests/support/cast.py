"""The people of the test stores, once: who they are, the roles they hold, their passwords.

Everyone keeps one name and one full name in every suite. Two stores are staffed from them:

- `PLANT`: the store as a plant runs it. The quality manager set it up with `capa init` and
  administers it; everyone shares `PASSWORD`. The command-line, integration and read-side
  suites use it, or a part of it (`part_of`).
- `QUALITY_TEAM`: the quality team of the specification (features/; features/README.md shows
  it to its readers): an administrator who does no quality work, so that separation of duties
  can be shown, and an auditor. Each person signs with their own password, `password_of(user)`.
"""

from __future__ import annotations

#: user id -> (full name, roles); the first one initialises the store and administers it.
Cast = dict[str, tuple[str, list[str]]]

ADMINISTRATOR = "admin"
QUALITY_MANAGER = "mhernandez"
QUALITY_ENGINEER = "jchen"
OWNER = "apatel"
TECHNICIAN = "lnguyen"
VERIFIER = "rkowalski"
REPORTER = "tokafor"
AUDITOR = "dbrooks"

#: The one full name of each person.
FULL_NAMES: dict[str, str] = {
    ADMINISTRATOR: "Alex Admin",
    QUALITY_MANAGER: "Maria Hernandez",
    QUALITY_ENGINEER: "Jun Chen",
    OWNER: "Anil Patel",
    TECHNICIAN: "Linh Nguyen",
    VERIFIER: "Roman Kowalski",
    REPORTER: "Tolu Okafor",
    AUDITOR: "Dana Brooks",
}

#: The password everyone of `PLANT` signs with.
PASSWORD = "correct-horse-battery-staple"

ORGANISATION = "Northwind Medical Devices"


def password_of(user: str) -> str:
    """The own password of a person of `QUALITY_TEAM`."""
    return f"{user}-correct-horse"


def _staffed(roles: dict[str, list[str]]) -> Cast:
    return {user: (FULL_NAMES[user], held) for user, held in roles.items()}


PLANT: Cast = _staffed({
    QUALITY_MANAGER: ["admin", "quality"],
    QUALITY_ENGINEER: ["quality"],
    OWNER: ["owner"],
    TECHNICIAN: ["owner"],
    VERIFIER: ["quality"],
    REPORTER: ["reporter"],
    AUDITOR: ["auditor"],
})

QUALITY_TEAM: Cast = _staffed({
    ADMINISTRATOR: ["admin"],
    QUALITY_MANAGER: ["quality"],
    QUALITY_ENGINEER: ["quality", "owner"],
    OWNER: ["owner"],
    TECHNICIAN: ["owner"],
    VERIFIER: ["quality"],
    REPORTER: ["reporter"],
    AUDITOR: ["auditor"],
})


def part_of(cast: Cast, *users: str) -> Cast:
    """The people `users` of `cast`, in that order (the first initialises the store)."""
    return {user: cast[user] for user in users}


#: The plant without its auditor: the store the command-line suite and the application's own
#: tests start from.
PLANT_CREW: Cast = part_of(PLANT, QUALITY_MANAGER, QUALITY_ENGINEER, OWNER, TECHNICIAN,
                           VERIFIER, REPORTER)
