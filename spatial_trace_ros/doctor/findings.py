"""One finding per line: what was checked, what was found, what to do about it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Level(str, Enum):
    OK = "ok"
    WARN = "warn"  # works, but worth fixing
    FAIL = "FAIL"  # blocks running the stack: doctor exits non-zero
    SKIP = "skip"  # not asked for (e.g. no robot address given)


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    message: str
    fix: str = ""


def format_finding(finding: Finding) -> str:
    fix = f" -> {finding.fix}" if finding.fix and finding.level in (Level.WARN, Level.FAIL) else ""
    return f"[{finding.level.value:>4}] {finding.check}: {finding.message}{fix}"


def exit_code(findings: list[Finding]) -> int:
    return 1 if any(f.level == Level.FAIL for f in findings) else 0
