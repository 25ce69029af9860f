"""R7.3: bulk import of leads from CSV or Excel through the same validation as intake."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.db import new_id
from app.domain.errors import DomainError
from app.domain.intake.schemas import IntakeResult, SubmissionDraft
from app.domain.intake.service import IntakeContext, accept_payload
from app.domain.sources.models import Source


def read_rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Header and rows of a .csv (UTF-8, with or without BOM) or .xlsx (first sheet)."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        sheet = load_workbook(path, read_only=True, data_only=True).active
        values = list(sheet.iter_rows(values_only=True))
        header = [str(h).strip() if h is not None else "" for h in (values[0] if values else [])]
        rows = [{h: v for h, v in zip(header, row, strict=False) if h and v is not None} for row in values[1:]]
        return header, [r for r in rows if r]
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), [{k: v for k, v in row.items() if k} for row in reader]


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, str | int | float | bool) else str(v)) for k, v in row.items()}


def file_fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


async def import_row(ctx: IntakeContext, source: Source, path: Path, fingerprint: str, number: int,
                     row: dict[str, Any]) -> IntakeResult:
    """One row, as a submission of `source` (kept, validated, deduplicated like any other).

    Its idempotency key is the file's fingerprint plus the row number: importing the same file again
    creates nothing new.
    """
    body = json.dumps(_jsonable(row), ensure_ascii=False).encode()
    draft = SubmissionDraft(
        id=new_id(), source_id=source.id, received_at=ctx.clock.now(), content_type="application/json",
        raw_body=body, body_truncated=False, body_sha256=hashlib.sha256(body).hexdigest(),
        headers={"x-import-file": path.name[:200], "x-import-row": str(number)}, remote_addr=None)
    return await accept_payload(ctx, source, draft, _jsonable(row), f"import:{fingerprint}:{number}",
                                from_browser=False)


def iter_failures(results: list[tuple[int, dict[str, Any], IntakeResult | DomainError]]) -> Iterator[dict[str, Any]]:
    for number, row, result in results:
        if isinstance(result, DomainError):
            errors = getattr(result, "errors", None)
            reason = "; ".join(f"{e.field}:{e.code}" for e in errors) if errors else result.detail
            yield {"row": number, **_jsonable(row), "reason": reason}
