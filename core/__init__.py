"""The bottom layer: settings, environment set-up, file helpers and the deferred heavy imports.

Importing :mod:`core` (as every module above it does, through :mod:`core.settings`) applies the quiet,
offline library defaults of :mod:`core.environment` before any heavy library is imported.
"""

from core.environment import set_defaults

set_defaults()
