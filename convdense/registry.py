"""The ``convdense`` registry scope.

Every registry here is a child of mmengine's root registry of the same kind, so
an mmdet or mmseg config can name a convdense module as ``type='convdense.NAME'``
(mmengine imports ``convdense.registry`` on seeing the ``convdense.`` prefix and
walks to this child), exactly as upstream configs use ``mmpretrain.*``.

``locations`` keeps ``import convdense`` light: the modules that register into a
registry are imported the first time that registry is asked for a name.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

SCOPE = 'convdense'


def _child(name, parent, locations=()):
    return Registry(name, parent=parent, scope=SCOPE, locations=list(locations))


MODELS = _child('model', MMENGINE_MODELS, ['convdense.models'])
DATASETS = _child('dataset', MMENGINE_DATASETS, ['convdense.datasets'])
TRANSFORMS = _child('transform', MMENGINE_TRANSFORMS, ['convdense.datasets'])
METRICS = _child('metric', MMENGINE_METRICS, ['convdense.evaluation'])
EVALUATOR = _child('evaluator', MMENGINE_EVALUATOR, ['convdense.evaluation'])
VISUALIZERS = _child('visualizer', MMENGINE_VISUALIZERS, ['convdense.visualization'])
VISBACKENDS = _child('vis_backend', MMENGINE_VISBACKENDS, ['convdense.visualization'])
HOOKS = _child('hook', MMENGINE_HOOKS, ['convdense.engine'])

# The rest exist so that ``default_scope='convdense'`` finds a child for every
# registry the Runner consults; each falls back to mmengine's own modules.
RUNNERS = _child('runner', MMENGINE_RUNNERS)
LOOPS = _child('loop', MMENGINE_LOOPS)
DATA_SAMPLERS = _child('data sampler', MMENGINE_DATA_SAMPLERS)
MODEL_WRAPPERS = _child('model_wrapper', MMENGINE_MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child('weight initializer', MMENGINE_WEIGHT_INITIALIZERS)
OPTIMIZERS = _child('optimizer', MMENGINE_OPTIMIZERS)
OPTIM_WRAPPERS = _child('optim_wrapper', MMENGINE_OPTIM_WRAPPERS, ['convdense.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child('parameter scheduler', MMENGINE_PARAM_SCHEDULERS)
TASK_UTILS = _child('task util', MMENGINE_TASK_UTILS)
LOG_PROCESSORS = _child('log_processor', MMENGINE_LOG_PROCESSORS)
FUNCTIONS = _child('function', MMENGINE_FUNCTIONS)


def build_model(cfg):
    """Build a model config in the convdense scope, whatever the caller's default
    scope is: an mmdet or mmseg run makes its own scope current, and mmengine
    looks unprefixed types up there, not here."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(SCOPE):
        return MODELS.build(cfg)
