"""minirnn: RNNs, softmax attention and retention, forward and backward, by hand in NumPy.

Everything public is re-exported here; see the docs site for the derivations.
"""

from .attention import (
    AttentionCache,
    KVCache,
    MHACache,
    SoftmaxCache,
    attention_backward,
    attention_forward,
    causal_mask,
    init_kv_cache,
    init_mha_params,
    mha_backward,
    mha_forward,
    mha_step,
    softmax_backward,
    softmax_forward,
)
from .gradcheck import check_gradients, numerical_gradient, rel_error
from .retention import (
    ChunkwiseCache,
    ParallelCache,
    RecurrentCache,
    RetentionState,
    RetentionStateGrad,
    decay_mask,
    retention_chunkwise,
    retention_chunkwise_backward,
    retention_final_state,
    retention_parallel,
    retention_parallel_backward,
    retention_recurrent,
    retention_recurrent_backward,
)
from .rnn import (
    RNNCache,
    RNNStepCache,
    init_rnn_params,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
)

__version__ = "0.1.0"

__all__ = [
    "AttentionCache",
    "ChunkwiseCache",
    "KVCache",
    "MHACache",
    "ParallelCache",
    "RNNCache",
    "RNNStepCache",
    "RecurrentCache",
    "RetentionState",
    "RetentionStateGrad",
    "SoftmaxCache",
    "attention_backward",
    "attention_forward",
    "causal_mask",
    "check_gradients",
    "decay_mask",
    "init_kv_cache",
    "init_mha_params",
    "init_rnn_params",
    "mha_backward",
    "mha_forward",
    "mha_step",
    "numerical_gradient",
    "rel_error",
    "retention_chunkwise",
    "retention_chunkwise_backward",
    "retention_final_state",
    "retention_parallel",
    "retention_parallel_backward",
    "retention_recurrent",
    "retention_recurrent_backward",
    "rnn_backward",
    "rnn_forward",
    "rnn_step_backward",
    "rnn_step_forward",
    "softmax_backward",
    "softmax_forward",
]
