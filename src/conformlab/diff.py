"""`conformlab diff OLD.json NEW.json`: what changed between two runs' results files (format v1).

Pure functions over the parsed documents (see `load` for reading one): `compare(old, new)` matches
targets by name and requirements by id and gives a `Comparison`; `render_text` and `render_markdown`
show it; `regressed` is what the exit status of the command says.

- REGRESSED: a requirement that was not FAIL is FAIL now, or one that was not UNEXPECTED PASS is now
  (a waiver gone stale fails a run too).
- FIXED: FAIL before, and now PASS, PARTIAL, NOT APPLICABLE or WAIVED.
- CHANGED: any other change of the verdict word (PASS -> ERROR, PARTIAL -> NOT VERIFIED, ...), and
  a CONFLICT entry whose device now follows the other reading of the vendor's pages.
- APPEARED / DISAPPEARED: a requirement, or a whole target, in one file only.
- IDENTITY: per target, the firmware and model values of the device's identity answer that differ
  (its top-level values whose key names a version, firmware, model, device, chip, build or date; and
  such name/value entries of a top-level list, like the WattWächter's `esp` list). Uptimes, heap and
  temperatures differ from run to run and are left out: the same run twice shows no change. The
  firmware version and build date the rules were judged by ("firmware" member) count too.

Nothing here prints a secret: the files are masked when written, and every rendered text passes
through `conformlab.secrets.mask` once more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from conformlab import secrets
from conformlab.verdicts import (
    FAIL, NOT_APPLICABLE, PARTIAL, PASS, UNEXPECTED_PASS, WAIVED,
)

REGRESSED, FIXED, CHANGED, APPEARED, DISAPPEARED, IDENTITY = (
    "REGRESSED", "FIXED", "CHANGED", "APPEARED", "DISAPPEARED", "IDENTITY")
KINDS = (REGRESSED, FIXED, CHANGED, APPEARED, DISAPPEARED, IDENTITY)
_COUNT_WORDS = {REGRESSED: "regressed", FIXED: "fixed", CHANGED: "changed", APPEARED: "appeared",
                DISAPPEARED: "disappeared", IDENTITY: "identity change"}
_FIXED_TO = frozenset({PASS, PARTIAL, NOT_APPLICABLE, WAIVED})
_REGRESSED_TO = frozenset({FAIL, UNEXPECTED_PASS})
# Identity keys that say what the device is and runs (not how it is doing right now).
_IDENTITY_KEY = re.compile(r"version|ver$|firmware|model|device|product|chip|build|commit|revision|release|date",
                           re.IGNORECASE)
_SENTENCE = 100  # characters of the requirement's sentence the markdown table shows


@dataclass(frozen=True)
class Change:
    kind: str  # one of KINDS
    target: str
    item: str  # the requirement id; for IDENTITY the identity key; "" for a whole target
    old: str  # the old verdict word (identity value); "" when absent
    new: str
    why: str = ""  # one line: the reason of the check that decided the new (or old) verdict
    text: str = ""  # the requirement's sentence


@dataclass(frozen=True)
class Comparison:
    changes: tuple[Change, ...]  # grouped in the order of KINDS, then by target and item

    def of(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    def counts(self) -> dict[str, int]:
        return {kind: n for kind in KINDS if (n := len(self.of(kind)))}


# -- reading a file --------------------------------------------------------------------------------

def load(path: str | Path) -> dict:
    """Read a results file and check it: against schemas/results-v1.schema.json (the writer's
    `load_results`), then what the comparison relies on beyond the schema (a target name and a
    requirement id once each). ValueError with one line naming the file and what is wrong."""
    from conformlab.plugin.results import load_results

    doc = load_results(path)
    problem = _problem(doc)
    if problem:
        raise ValueError(f"{path}: {problem}")
    return doc


def _problem(doc) -> str:
    """What the comparison relies on beyond the schema (which load_results has checked): each target
    name once, and each requirement id once per target; "" when it holds."""
    names = set()
    for target in doc["targets"]:
        name = target["name"]
        if name in names:
            return f"not a valid results file: target {name!r} appears twice"
        names.add(name)
        ids = [req["id"] for req in target["requirements"]]
        twice = sorted({rid for rid in ids if ids.count(rid) > 1})
        if twice:
            return f"not a valid results file: target {name!r}: requirement {twice[0]} appears twice"
    return ""


# -- comparing ---------------------------------------------------------------------------------------

def _line(text) -> str:
    return " ".join(str(text or "").split())


def _why(req: dict) -> str:
    """The reason of the check that decided the verdict: a failing one first, then any other that
    did not pass and says why."""
    checks = [c for c in req.get("checks") or [] if isinstance(c, dict)]
    for outcomes in (("failed",), ("error",), ("waived", "not applicable", "not verified")):
        for check in checks:
            if check.get("outcome") in outcomes and _line(check.get("reason")):
                return _line(check.get("reason"))
    if req.get("verdict") == UNEXPECTED_PASS:
        return "waived, but it passed: remove the waiver"
    return ""


def _identity_values(target: dict) -> dict[str, str]:
    answer = (target.get("identity") or {}).get("answer") or {}
    values: dict[str, str] = {}
    for key, value in answer.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            if _IDENTITY_KEY.search(key):
                values[key] = str(value)
        elif isinstance(value, list):  # name/value entries (the WattWächter's /system/info)
            for entry in value:
                if (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                        and _IDENTITY_KEY.search(entry["name"]) and "value" in entry):
                    values[f"{key}.{entry['name']}"] = str(entry["value"])
    firmware = target.get("firmware") or {}
    for key in ("version", "built"):  # what the rules were judged by (a targets file's `firmware` too)
        if firmware.get(key) is not None:
            values[f"firmware {key}"] = str(firmware[key])
    return values


def _followed(requirement: dict) -> str:
    """A CONFLICT entry's verdict with the readings the device follows ("PASS, follows IANA")."""
    follows = (requirement.get("conflict") or {}).get("follows") or []
    return requirement["verdict"] + (f", follows {' and '.join(follows)}" if follows else "")


def _kind(old: str, new: str) -> str | None:
    if old == new:
        return None
    if new in _REGRESSED_TO:
        return REGRESSED
    if old == FAIL and new in _FIXED_TO:
        return FIXED
    return CHANGED


def compare(old: dict, new: dict) -> Comparison:
    """The changes from the run `old` to the run `new` (both parsed results documents, version 1)."""
    changes: list[Change] = []
    old_targets = {t["name"]: t for t in old.get("targets", [])}
    new_targets = {t["name"]: t for t in new.get("targets", [])}
    for name in sorted(old_targets.keys() | new_targets.keys()):
        before, after = old_targets.get(name), new_targets.get(name)
        if before is None or after is None:
            present = after if before is None else before
            kind = APPEARED if before is None else DISAPPEARED
            device = present.get("device") or (present.get("entry") or {}).get("device") or "?"
            n = len(present.get("requirements", []))
            why = f"{device}, {n} requirement{'s' if n != 1 else ''}"
            changes.append(Change(kind, name, "", "", "", why))
            continue
        old_reqs = {r["id"]: r for r in before.get("requirements", [])}
        new_reqs = {r["id"]: r for r in after.get("requirements", [])}
        for rid in sorted(old_reqs.keys() | new_reqs.keys()):
            was, now = old_reqs.get(rid), new_reqs.get(rid)
            if was is None:
                changes.append(Change(APPEARED, name, rid, "", now["verdict"], _why(now), _line(now.get("text"))))
            elif now is None:
                changes.append(Change(DISAPPEARED, name, rid, was["verdict"], "", _why(was), _line(was.get("text"))))
            elif kind := _kind(was["verdict"], now["verdict"]):
                why = _why(now) or (f"was: {_why(was)}" if _why(was) else "")
                changes.append(Change(kind, name, rid, was["verdict"], now["verdict"], why,
                                      _line(now.get("text") or was.get("text"))))
            elif _followed(was) != _followed(now):  # same verdict, the other side of the vendor's pages
                changes.append(Change(CHANGED, name, rid, _followed(was), _followed(now),
                                      "the device follows another reading where the vendor's pages disagree",
                                      _line(now.get("text") or was.get("text"))))
        old_id, new_id = _identity_values(before), _identity_values(after)
        for key in sorted(old_id.keys() | new_id.keys()):
            if old_id.get(key) != new_id.get(key):
                changes.append(Change(IDENTITY, name, key, old_id.get(key, ""), new_id.get(key, "")))
    order = {kind: i for i, kind in enumerate(KINDS)}
    changes.sort(key=lambda c: (order[c.kind], c.target, c.item))
    return Comparison(tuple(changes))


def regressed(cmp: Comparison) -> bool:
    return any(c.kind == REGRESSED for c in cmp.changes)


def count_line(cmp: Comparison) -> str:
    counts = cmp.counts()
    if not counts:
        return "no change"
    return ", ".join(f"{n} {_COUNT_WORDS[kind]}{'s' if kind == IDENTITY and n != 1 else ''}"
                     for kind, n in counts.items())


# -- showing -----------------------------------------------------------------------------------------

def _text_line(c: Change) -> str:
    if not c.item:  # a whole target
        return f"{c.kind}  {c.target}  whole target: {c.why}"
    old, new = c.old or "(none)", c.new or "(none)"
    if c.kind == APPEARED:
        verdicts = new
    elif c.kind == DISAPPEARED:
        verdicts = f"was {old}"
    else:
        verdicts = f"{old} -> {new}"
    return f"{c.kind}  {c.target}  {c.item}  {verdicts}" + (f": {c.why}" if c.why else "")


def render_text(cmp: Comparison) -> str:
    """One line per change, grouped by kind (a blank line between groups), then the count line."""
    if not cmp.changes:
        return "no change\n"
    groups = ["\n".join(_text_line(c) for c in cmp.of(kind)) for kind in KINDS if cmp.of(kind)]
    return secrets.mask("\n\n".join(groups) + "\n\n" + count_line(cmp) + "\n")


def _cell(text: str) -> str:
    """Text safe inside a GitHub-flavoured markdown table cell: one line, pipes and markup escaped."""
    text = _line(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    return text.replace("<", "&lt;")  # no HTML tag reaches the comment


def _shorten(text: str, limit: int = _SENTENCE) -> str:
    text = _line(text)
    if len(text) <= limit:
        return text
    cut = text[:limit - 1].rsplit(" ", 1)[0] if " " in text[:limit - 1] else text[:limit - 1]
    return cut.rstrip(" ,;:.") + "…"


_GROUP_TITLES = {REGRESSED: "Regressed", FIXED: "Fixed", CHANGED: "Changed verdict", APPEARED: "Appeared",
                 DISAPPEARED: "Disappeared", IDENTITY: "Device identity"}


def render_markdown(cmp: Comparison) -> str:
    """A summary fit for a pull-request comment: a heading, the count line, a table per group."""
    lines = ["## conformlab diff", ""]
    if not cmp.changes:
        lines.append("**no change**")
        return secrets.mask("\n".join(lines) + "\n")
    marker = "❌ " if regressed(cmp) else "✅ "
    lines += [f"**{marker}{count_line(cmp)}**", ""]
    for kind in KINDS:
        group = cmp.of(kind)
        if not group:
            continue
        lines += [f"### {_GROUP_TITLES[kind]} ({len(group)})", ""]
        if kind == IDENTITY:
            lines += ["| target | key | old | new |", "|---|---|---|---|"]
            lines += [f"| {_cell(c.target)} | {_cell(c.item)} | {_cell(c.old or '(none)')} | "
                      f"{_cell(c.new or '(none)')} |" for c in group]
        else:
            lines += ["| target | requirement | old | new | why |", "|---|---|---|---|---|"]
            for c in group:
                if c.item:
                    requirement = f"**{_cell(c.item)}**" + (f" {_cell(_shorten(c.text))}" if c.text else "")
                else:
                    requirement = "(whole target)"
                lines.append(f"| {_cell(c.target)} | {requirement} | {_cell(c.old) or '–'} | "
                             f"{_cell(c.new) or '–'} | {_cell(_shorten(c.why, 200))} |")
        lines.append("")
    return secrets.mask("\n".join(lines))
