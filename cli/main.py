"""The `wanflow` command line (Typer + Rich): the root, made of one module per command group.

:data:`COMMANDS` lists every command and group at the top of `wanflow`, in the order `wanflow --help` shows
them, with the module that defines it and its help. The root imports a module only when one of its commands
runs (or shows its own help): `wanflow --help` lists the commands from this table alone, so it loads no
catalog, no video library and no flow. ``tests/test_cli.py`` checks that the table says what the modules say.
What the groups share (consoles, settings, error handling and exit codes) is in :mod:`cli.context`.
"""

from __future__ import annotations

import importlib

import click
import typer
import typer.main
from typer.core import TyperGroup

COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("cli.validate", "Validate a brief without writing anything; rows rejected by the brand's text "
                                 "policy are listed."),
    "run": ("cli.campaign", "Run a campaign: validate → catalog → plan → generate → QC → review queue. Re-runs "
                            "regenerate nothing."),
    "publish": ("cli.campaign", "Transcode approved clips and deliver renditions, posters and a manifest to the "
                                "destination."),
    "edit": ("cli.edit", "Edit one clip outside a brief (reframe, extend, replace, remove, restyle, reference), with "
                         "the same\nvalidation, catalog, QC and review as a campaign."),
    "lineage": ("cli.lineage", "Trace a published file back to rendition, raw clip, job, model version, prompt, "
                               "brief, QC and review;\nor, with --model NAME/N, list everything made with that "
                               "version."),
    "regenerate": ("cli.campaign", "Regenerate a job on its recorded device, dtype and memory policy; exit 0 if its "
                                   "frames match the catalog's\nhash exactly, 1 if they differ. Writes no clip, only "
                                   "an audit event."),
    "qc": ("cli.qc", "Run every QC check on FILE under a brand's rules (exit 0 pass, 3 needs review, 4 blocked);\n"
                     "`qc agreement`: the checks measured against the reviewers' decisions."),
    "demo": ("cli.campaign", "End to end on the example: run the campaign, approve as a demo user, publish, show "
                             "lineage."),
    "review": ("cli.review", "Human review of clips that passed QC."),
    "policy": ("cli.qc", "The brand's text policy on its own."),
    "models": ("cli.models", "Wan model versions in the MLflow registry."),
    "db": ("cli.db", "Catalog database."),
    "provenance": ("cli.provenance", "C2PA content credentials of published files."),
    "fleet": ("cli.fleet", "GPU fleet: slots, sharded campaigns, workers."),
    "stack": ("cli.stack", "A production-like stack on 127.0.0.1: Prefect, MLflow on PostgreSQL, workers, "
                           "dashboard."),
    "users": ("cli.users", "Review dashboard accounts and roles."),
    "audit": ("cli.audit", "The hash-chained audit trail."),
    "revisions": ("cli.revisions", "Clips that reviewers asked to change."),
    "rollout": ("cli.rollout", "Champion/challenger rollout: evaluate, gates, promote, rollback."),
    "personalize": ("cli.personalize", "Brand LoRAs: governed training datasets, training, recall."),
}


def load_command(name: str) -> click.Command:
    """The command (or group) ``name`` from its module's Typer app: the root's one deferred import."""
    group = typer.main.get_group(importlib.import_module(COMMANDS[name][0]).app)
    command = group.commands.get(name, group)  # a top-level command of the module, or the module's whole group
    command.name = name
    return command


class LazyRoot(TyperGroup):
    """The root group: lists the commands from :data:`COMMANDS`, loads one when it is invoked."""

    listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        if self.listing:  # `wanflow --help`: the table's help is all the listing shows
            return click.Command(name, help=COMMANDS[name][1])
        return load_command(name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


app = typer.Typer(cls=LazyRoot, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def root() -> None:
    """wanflow: campaign briefs → Wan video → QC → review → published renditions, with lineage."""


if __name__ == "__main__":  # python -m cli.main
    app()
