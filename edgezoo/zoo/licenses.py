"""Licences: what binds a model's code and weights, a policy checked before export, and the
LICENSE / NOTICE files every bundle carries.

SPDX expressions are classified by their identifiers: *permissive* (MIT, BSD, Apache-2.0,
...), *copyleft* (GPL, LGPL, AGPL, MPL, EPL, CC BY-SA, ...), *non-commercial* (CC BY-NC
...), or *unknown* (NOASSERTION or an identifier not listed here). An expression with OR
takes its most permissive branch; with AND, its most restrictive part.

Policies (``--license-policy``, or ``$EDGEZOO_LICENSE_POLICY``):
- ``permissive``: code and weights permissive, and commercial use allowed;
- ``no-copyleft``: nothing copyleft (non-commercial terms are reported, not refused);
- ``any``: everything (the default); the plan still names the licences.
"""

from __future__ import annotations

import re
from importlib import resources

from edgezoo.errors import UsageError

POLICIES = ("permissive", "no-copyleft", "any")

PERMISSIVE = {
    "MIT", "MIT-0", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0", "ISC", "Zlib", "Unlicense", "CC0-1.0", "CC-BY-4.0",
    "CC-BY-3.0", "BSL-1.0", "PSF-2.0", "0BSD", "Python-2.0", "NCSA", "X11", "PDDL-1.0", "ODC-By-1.0",
}
COPYLEFT_PREFIXES = ("GPL-", "LGPL-", "AGPL-", "MPL-", "EPL-", "CDDL-", "EUPL-", "OSL-", "CC-BY-SA-", "ODbL-", "CECILL-")
NONCOMMERCIAL_PREFIXES = ("CC-BY-NC-",)
_RANK = {"permissive": 0, "unknown": 1, "non-commercial": 2, "copyleft": 3}
TEXTS = {"Apache-2.0": "Apache-2.0.txt", "MIT": "MIT.txt", "BSD-3-Clause": "BSD-3-Clause.txt"}


def classify_id(spdx_id: str) -> str:
    ident = spdx_id.strip().strip("()")
    if ident in PERMISSIVE:
        return "permissive"
    if ident.startswith(NONCOMMERCIAL_PREFIXES):
        return "non-commercial"
    if ident.startswith(COPYLEFT_PREFIXES):
        return "copyleft"
    return "unknown"


def classify(expression: str) -> str:
    """The class of an SPDX expression (see the module's docstring)."""
    alternatives = re.split(r"\s+OR\s+", expression.strip())
    best = None
    for alt in alternatives:
        parts = [p.split(" WITH ")[0] for p in re.split(r"\s+AND\s+", alt)]
        worst = max((classify_id(p) for p in parts), key=_RANK.__getitem__)
        best = worst if best is None or _RANK[worst] < _RANK[best] else best
    return best or "unknown"


def policy_problems(card, policy: str) -> list[str]:
    """What in ``card`` the policy forbids (empty: allowed)."""
    if policy not in POLICIES:
        raise UsageError(f"unknown licence policy {policy!r}", hint=f"choose one of {', '.join(POLICIES)}")
    if policy == "any":
        return []
    problems = []
    for what, expr in (("code", card.license), ("weights", card.weights_license or "NOASSERTION")):
        kind = classify(expr)
        if kind == "copyleft" or (policy == "permissive" and kind != "permissive"):
            problems.append(f"its {what} licence {expr} is {kind}")
    if policy == "permissive" and not card.commercial_use:
        problems.append("its weights may not be used commercially")
    return problems


def check_policy(card, policy: str) -> None:
    problems = policy_problems(card, policy)
    if problems:
        raise UsageError(f"{card.id} is refused by licence policy {policy!r}: {'; '.join(problems)}",
                         hint=f"see `edgezoo info {card.id}`; `edgezoo list --license {policy}` lists the models it allows, "
                              "or choose --license-policy any if your use is allowed")


def license_text(spdx_id: str) -> str | None:
    name = TEXTS.get(spdx_id)
    if name is None:
        return None
    return (resources.files("edgezoo.zoo") / "licenses" / name).read_text(encoding="utf-8")


def bundle_files(card) -> dict[str, str]:
    """LICENSE and NOTICE for a bundle of ``card``: the licences' texts where edgezoo has them
    (a pointer to spdx.org otherwise) and the attribution a redistributor must keep."""
    v = card.version()
    weights_license = card.weights_license or "NOASSERTION"
    ids = []
    for expr in (weights_license, card.license):
        for ident in re.findall(r"[A-Za-z0-9.\-+]+", expr):
            if ident not in ("AND", "OR", "WITH") and ident not in ids:
                ids.append(ident)
    lines = [f"{card.name} ({card.id}@{v.version})", "",
             f"Weights: {weights_license}{'' if card.commercial_use else ' (commercial use NOT allowed)'}",
             f"Code (architecture): {card.license}", ""]
    if card.license_notes:
        lines += [card.license_notes, ""]
    for ident in ids:
        text = license_text(ident)
        lines += ["=" * 78, ident, "=" * 78, ""]
        lines += [text.rstrip(), ""] if text else [f"The text of {ident} is at https://spdx.org/licenses/{ident}.html", ""]
    notice = [f"{card.name} ({card.id}@{v.version})", ""]
    notice += [card.attribution or f"By {card.origin.authors}. No further attribution is recorded on the card.", ""]
    notice += [f"Weights: {v.weights.where} (sha256 {v.weights.sha256})", f"Origin: {card.origin.url}"]
    if card.origin.paper:
        notice.append(f"Paper: {card.origin.paper}")
    notice.append("Packaged by edgezoo (Apache-2.0).")
    return {"LICENSE": "\n".join(lines) + "\n", "NOTICE": "\n".join(notice) + "\n"}
