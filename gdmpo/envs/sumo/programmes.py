"""The signal programmes SUMO actually runs, read from SUMO itself after it has loaded every input.

A ``.net.xml`` carries each light's programme, but a scenario's additional files may replace it (a
``<tlLogic>`` with the same id, or a new programme SUMO switches to). The phases an agent chooses from
must be the ones SUMO runs, so for a scenario with additional files gdmpo starts SUMO once, exactly as
the episodes will (same configuration and options), and asks each light for its active programme.

SUMO runs as its own process over TraCI (``traci`` with a private label), so this works in a process
that also holds a libsumo simulation, and nothing of it outlives the call.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

from gdmpo.envs.sumo.scenario import Scenario
from gdmpo.envs.sumo.workers import SumoError
from gdmpo.graph.sumo import Programme, sumo_binary

_labels = itertools.count()


def needs_loading(scenario: Scenario, sumo_options: Sequence[str] = ()) -> bool:
    """Whether SUMO may run other programmes than the net file's: the scenario loads additional files
    (from its configuration or ``-a``/``--additional-files`` in ``sumo_options``)."""
    options = {str(option).split("=")[0] for option in sumo_options}
    return bool(scenario.additional_files) or bool(options & {"-a", "--additional-files"})


def loaded_programmes(scenario: Scenario, sumo_options: Sequence[str] = ()) -> dict[str, Programme]:
    """Per light id, ``(programme id, [(state, duration s), ...])`` of the programme SUMO runs at the
    scenario's begin, with every input the scenario and ``sumo_options`` name loaded.

    Raises:
        SumoError: SUMO could not load the scenario; the message holds SUMO's own words.
    """
    import traci
    from sumolib.miscutils import getFreeSocketPort

    label = f"gdmpo-programmes-{os.getpid()}-{next(_labels)}"
    with tempfile.TemporaryDirectory(prefix="gdmpo-sumo-") as folder:
        log = Path(folder) / "errors.log"
        port = getFreeSocketPort()
        command = [sumo_binary("sumo"), *scenario.sumo_args(), *sumo_options, "--no-step-log", "true",
                   "--no-warnings", "true", "--error-log", str(log), "--tripinfo-output", os.devnull,
                   "--remote-port", str(port)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # traci prints each retry
                connection = traci.connect(port, numRetries=400, proc=process, waitBetweenRetries=0.05, label=label)
            try:
                return _active_programmes(connection)
            finally:
                connection.close()
        except Exception as err:  # SUMO refused an input: at start, or when it read the routes
            said = " ".join((log.read_text() if log.is_file() else "").split()) or str(err)
            raise SumoError(f"SUMO could not load {scenario.sumocfg or scenario.net_file}: {said}") from None
        finally:
            try:
                process.wait(timeout=10)  # it ends on its own once the connection is closed
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _active_programmes(connection) -> dict[str, Programme]:
    out: dict[str, Programme] = {}
    for tls in connection.trafficlight.getIDList():
        active = connection.trafficlight.getProgram(tls)
        logics = {logic.programID: logic for logic in connection.trafficlight.getAllProgramLogics(tls)}
        phases = logics[active].phases if active in logics else []
        out[tls] = (active, [(phase.state, float(phase.duration)) for phase in phases])
    return out

def signal_graph(source: str, neighbours: str = "road", max_distance: float = 1000.0):
    """``(graph, net_file)``: the signal agents of ``source``, a ``.net.xml``, a ``.sumocfg`` (its
    programmes as SUMO loads them) or a named scenario (``resco:cologne8``), as an environment on it
    would see them."""
    from gdmpo.envs.sumo import resco
    from gdmpo.envs.sumo.scenario import make_scenario
    from gdmpo.graph.sumo import from_sumo

    if resco.is_named_scenario(source):
        source = resco.sumocfg(source)
    if not source.endswith((".sumocfg", ".sumocfg.gz")):
        return from_sumo(source, neighbours, max_distance), source
    scenario = make_scenario(sumocfg=source)
    programmes = loaded_programmes(scenario) if needs_loading(scenario) else None
    return from_sumo(scenario.net_file, neighbours, max_distance, programmes), scenario.net_file
