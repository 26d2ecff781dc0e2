"""`wanflow edit`: one edit outside a brief. The command writes the one-item brief it stands for (under the
home's ``edits/`` folder, kept as the record of what was asked) and runs it as any campaign: the same
validation (exit 2, nothing written), catalog, job, QC and review."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml

from cli.campaign import print_summary, run_campaign
from cli.context import InputError, fail, guard, settings
from core.files import write_text_atomic
from governance.brief_schema import BriefInvalid
from wan_tasks.intake import validate
from governance.edits import DEFAULT_EDIT_MODEL, OPS

app = typer.Typer()


def _ints(text: str | None, n: int, name: str) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != n:
        raise InputError([f"{name}: {n} integers separated by commas, got {text!r}"])
    return values


def edit_brief(source: str, op: str, prompt: str, *, campaign: str, brand: str, model: str, edit_model: str,
               to: str | None = None, frames: int | None = None, direction: str | None = None,
               mask: Path | None = None, box: list[int] | None = None, frame_range: list[int] | None = None,
               strength: float | None = None, references: list[Path] | None = None, steps: int | None = None,
               seed: int = 0, width: int | None = None, height: int | None = None,
               num_frames: int | None = None) -> str:
    """The YAML of a one-item brief asking for this edit (paths made absolute)."""
    path = Path(source).expanduser()
    edit: dict = {"op": op}
    if op != "reference":
        edit["source"] = source if source.startswith(("asset:", "item:")) else str(path.resolve())
    for key, value in (("to", to), ("frames", frames), ("direction", direction), ("box", box),
                       ("range", frame_range), ("strength", strength)):
        if value is not None:
            edit[key] = value
    if mask is not None:
        edit["mask"] = str(Path(mask).expanduser().resolve())
    if references:
        edit["references"] = [str(Path(r).expanduser().resolve()) for r in references]
    defaults = {k: v for k, v in (("steps", steps), ("seed", seed), ("width", width), ("height", height),
                                  ("num_frames", num_frames)) if v is not None}
    doc = {"campaign": campaign, "brand": brand, "model": model, "edit_model": edit_model, "defaults": defaults,
           "items": [{"id": f"{op}-1", "prompt": prompt, "edit": edit}]}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


@app.command("edit")
@guard
def edit_one(
    source: Annotated[str, typer.Argument(help="asset:N, item:CAMPAIGN/ITEM (its approved clip) or a video file; "
                                               "'-' for --op reference.")],
    op: Annotated[str, typer.Option("--op", help=f"One of: {', '.join(OPS)}.")],
    prompt: Annotated[str, typer.Option("--prompt", help="What the new or changed pixels show.")],
    to: Annotated[Optional[str], typer.Option("--to", help="reframe: the aspect ratio, e.g. 9:16.")] = None,
    frames: Annotated[Optional[int], typer.Option("--frames", help="extend: frames to add (a multiple of 4).")] = None,
    direction: Annotated[Optional[str], typer.Option("--direction", help="extend: forward or backward.")] = None,
    mask: Annotated[Optional[Path], typer.Option("--mask", help="replace/remove: a mask video or image.")] = None,
    box: Annotated[Optional[str], typer.Option("--box", help="replace/remove: x0,y0,x1,y1 in pixels.")] = None,
    frame_range: Annotated[Optional[str], typer.Option("--range", help="with --box: first,last frame.")] = None,
    strength: Annotated[Optional[float], typer.Option("--strength", help="restyle: 0.05-1.0.")] = None,
    reference: Annotated[Optional[list[Path]], typer.Option("--reference", help="reference: an image (repeat).")] = None,
    campaign: Annotated[Optional[str], typer.Option("--campaign", help="Campaign name (default: edit-<hash>).")] = None,
    brand: Annotated[str, typer.Option("--brand", help="Brand profile the result is checked against.")] = "acme",
    model: Annotated[str, typer.Option("--model", help="T2V model (restyle).")] = "wan-t2v@champion",
    edit_model: Annotated[str, typer.Option("--edit-model", help="VACE model.")] = DEFAULT_EDIT_MODEL,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Denoising steps (default: the brief's).")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Edit one clip outside a brief (reframe, extend, replace, remove, restyle, reference), with the same
    validation, catalog, QC and review as a campaign."""
    cfg = settings()
    if cfg.brands_dir is None and Path("examples/brands").is_dir():
        cfg = cfg.model_copy(update={"brands_dir": Path("examples/brands").resolve()})
    args = dict(to=to, frames=frames, direction=direction, mask=mask, box=_ints(box, 4, "--box"),
                frame_range=_ints(frame_range, 2, "--range"), strength=strength, references=reference, steps=steps,
                seed=seed)
    name = campaign or "edit-" + hashlib.sha256(repr((source, op, prompt, sorted(
        (k, str(v)) for k, v in args.items()))).encode()).hexdigest()[:10]
    text = edit_brief(source, op, prompt, campaign=name, brand=brand, model=model, edit_model=edit_model, **args)
    brief = cfg.home_dir / "edits" / f"{name}.yaml"
    brief.parent.mkdir(parents=True, exist_ok=True)
    existed = brief.exists()
    write_text_atomic(brief, text)
    try:
        validate(brief, cfg)  # every problem first (exit 2); a refused edit leaves no brief behind
    except BriefInvalid:
        if not existed:
            brief.unlink(missing_ok=True)
        raise
    summary = run_campaign(brief, cfg)
    print_summary(summary)
    if summary["jobs_failed"]:
        fail(1, [f"the edit failed (see the catalog's job error); re-run `wanflow run {brief}` to retry."])
