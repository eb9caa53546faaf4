"""Survey simulator: smf files of a simulated Pan-STARRS-like survey with known truth.

``simulate_survey(SurveyConfig(...), outdir)`` writes ``outdir/<EXP_NAME>.smf`` (the layout of
``shared/reference/smf-format.md``), ``outdir/truth.npz`` and, when asked, a reference
catalogue ``outdir/reference.<fmt>``, and returns the :class:`Truth`. The models (stars and
their motion, cadence and zero points, camera, distortion, flat, noise) are documented in the
module docstrings of ``stars``, ``schedule``, ``camera``, ``exposure`` and ``reference``;
``truth.MODEL`` is the short version stored with every truth file. Presets (``preset(name)``)
set up the association, relphot and relastro test surveys; ``python -m dvo.tools.simulate``
is the command line. ``simulate_survey(..., workers=2)`` forks processes for the exposure loop
with byte-identical results.

Examples
--------
>>> import tempfile
>>> from dvo.tools.simulate import SurveyConfig, simulate_survey, Truth
>>> with tempfile.TemporaryDirectory() as d:
...     truth = simulate_survey(SurveyConfig(n_exposures=2, star_density=500.0), d)
...     len(Truth.load(d).detections) == len(truth.detections)
True
"""

from .config import PRESETS, SimulateConfigError, SurveyConfig, central_chips, chip_name, preset
from .reference import REFERENCE_DTYPE, reference_path
from .survey import simulate_survey, smf_path
from .truth import DETECTION_DTYPE, IMAGE_DTYPE, MODEL, TRUTH_FILE, Truth

__all__ = [
    "SurveyConfig",
    "SimulateConfigError",
    "PRESETS",
    "preset",
    "central_chips",
    "chip_name",
    "simulate_survey",
    "smf_path",
    "Truth",
    "TRUTH_FILE",
    "MODEL",
    "IMAGE_DTYPE",
    "DETECTION_DTYPE",
    "REFERENCE_DTYPE",
    "reference_path",
]
