"""Small hand-written networks for the gradient-check mutation benchmark.

Each module is written in one well-known style and exposes the same three names:

- ``problem(seed=0, dtype=np.float64)`` -> ``(loss, grads, params)``: ``loss(params)``
  returns the scalar loss, ``grads(params)`` the hand-written gradients (in the
  style's own structure: ``dW1`` keys, lists, tuples unpacked into a dict),
  ``params`` the parameters, all on small seeded data;
- ``BACKWARD``: the qualified names of the functions holding backward code,
  the only code the mutator edits;
- a docstring naming the style.

The loss never runs backward code, so a mutant's gradient can be compared with
the clean module's loss and gradient.
"""

NETWORKS = (
    "colmajor_l2",
    "colmajor_dropout",
    "cs231n_layers",
    "cs231n_batchnorm",
    "nielsen",
    "minchar_rnn",
    "nnfs_layers",
    "nielsen_matrix",
)
