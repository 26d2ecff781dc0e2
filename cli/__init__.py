"""The `wanflow` command line: :mod:`cli.main` builds the app from one module per command group, which share
:mod:`cli.context`."""
