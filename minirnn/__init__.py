"""minirnn: RNNs, softmax attention and retention, forward and backward, by hand in NumPy.

Every public name of the library is re-exported here (``from minirnn import retention_parallel``);
each lives in the module of its derivation page. **Start here:**

==============================  ==========================  =================================
docs page                       file                        tests
==============================  ==========================  =================================
derivations/gradcheck.md        ``minirnn/gradcheck.py``    ``tests/test_gradcheck.py``
derivations/rnn.md              ``minirnn/rnn.py``          ``tests/test_rnn.py``
derivations/attention.md        ``minirnn/attention.py``    ``tests/test_attention.py``
derivations/retention.md        ``minirnn/retention.py``    ``tests/test_retention.py``
derivations/multiscale-         ``minirnn/msr.py``          ``tests/test_msr.py``
retention.md
derivations/gated-retention.md  ``minirnn/gated.py``,       ``tests/test_gated.py``,
                                ``minirnn/gated_msr.py``    ``tests/test_gated_layer.py``
derivations/vision.md           ``minirnn/vision.py``       ``tests/test_vision.py``
derivations/delta-rule.md       ``minirnn/delta.py``,       ``tests/test_delta.py``,
                                ``minirnn/deltanet.py``     ``tests/test_deltanet.py``
derivations/language-models.md  ``minirnn/layers.py``,      ``tests/test_layers.py``,
                                ``minirnn/blocks.py``,      ``tests/test_models.py``
                                ``minirnn/models.py``,
                                ``minirnn/classifiers.py``
==============================  ==========================  =================================

What each model carries from one token to the next (the KV cache, retention's fixed-size
states) is in ``minirnn/states.py``; the input checks are in ``minirnn/_checks/`` (a debugger
can skip them); the plan of the package, floor by floor, is ``minirnn/_floors.py``. What you
run rather than step into: ``python -m minirnn`` (``tour``, ``step``, ``exercise``, ``grade``,
``train``, ``bench``, ...).
"""

from . import attention as _attention
from . import blocks as _blocks
from . import classifiers as _classifiers
from . import delta as _delta
from . import deltanet as _deltanet
from . import gated as _gated
from . import gated_msr as _gated_msr
from . import gradcheck as _gradcheck
from . import gru as _gru
from . import images as _images
from . import layers as _layers
from . import lstm as _lstm
from . import minrnn as _minrnn
from . import mlstm as _mlstm
from . import models as _models
from . import msr as _msr
from . import optim as _optim
from . import parallel as _parallel
from . import registry as _registry
from . import retention as _retention
from . import rnn as _rnn
from . import states as _states
from . import tasks as _tasks
from . import train as _train
from . import vision as _vision
from .attention import *  # noqa: F403
from .blocks import *  # noqa: F403
from .classifiers import *  # noqa: F403
from .delta import *  # noqa: F403
from .deltanet import *  # noqa: F403
from .gated import *  # noqa: F403
from .gated_msr import *  # noqa: F403
from .gradcheck import *  # noqa: F403
from .gru import *  # noqa: F403
from .images import *  # noqa: F403
from .layers import *  # noqa: F403
from .lstm import *  # noqa: F403
from .minrnn import *  # noqa: F403
from .mlstm import *  # noqa: F403
from .models import *  # noqa: F403
from .msr import *  # noqa: F403
from .optim import *  # noqa: F403
from .parallel import *  # noqa: F403
from .registry import *  # noqa: F403
from .retention import *  # noqa: F403
from .rnn import *  # noqa: F403
from .states import *  # noqa: F403
from .tasks import *  # noqa: F403
from .train import *  # noqa: F403
from .vision import *  # noqa: F403

__version__ = "0.1.0"

# the public names of every module, each written once (in its module's __all__)
__all__ = sorted({name for module in (
    _attention, _blocks, _classifiers, _delta, _deltanet, _gated, _gated_msr, _gradcheck,
    _gru, _images, _layers, _lstm, _minrnn, _mlstm, _models, _msr, _optim, _parallel, _registry,
    _retention, _rnn, _states, _tasks, _train, _vision)
    for name in module.__all__})
