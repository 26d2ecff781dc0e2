"""Prefect flows and their tasks: the only package that imports Prefect.

Each flow reads as the data flow it orchestrates and calls tasks (:mod:`flows.tasks`) that wrap the plain
stage functions of :mod:`wan_tasks`; :mod:`flows.context` gives both the catalog of the settings a flow run
was given and the flow run's id. Prefect needs its home folder before it is imported, so importing this
package creates it (the folder itself comes from :mod:`core.environment`).
"""

from core.environment import ensure_prefect_home

ensure_prefect_home()
