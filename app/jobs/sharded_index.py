"""Build a neuron index with its batches on other workers (a Ray cluster), equal to a build in this process.

The corpus is tokenised and put in batch order here, exactly as :func:`app.methods.neurons.index.build_state`
does; the order is cut into shards of whole batches (``shard_sentences``, rounded), each shard indexed by a
worker into a state over the whole corpus (sentence ids global), and the states joined with
:func:`app.methods.neurons.stats.combine`, which is exact (quantised sums), so the result equals the
single-process build byte for byte at the same torch thread count. Shards are joined in batch order, so the
running state is always that of a prefix of the order: checkpoints are the same kind of state a
single-process build saves, and either kind of build resumes the other's.
"""

from __future__ import annotations

from app.jobs.contract import ShardRunner
from app.jobs.ray.tasks import IndexShard
from app.methods.callbacks import Exclusive, Progress, ShouldStop, no_exclusion
from app.methods.neurons.corpora import plan_batches
from app.methods.neurons.index import DEFAULT_CHECKPOINT_EVERY, Checkpoint, start_state
from app.methods.neurons.stats import IndexState, combine
from app.methods.neurons.units import NEURONS, UnitBasis
from app.modeling.loading import LoadedModel


def build_state_sharded(
    loaded: LoadedModel,
    sentences: list[str],
    *,
    runner: ShardRunner,
    k: int,
    batch_size: int,
    max_tokens: int | None = None,
    resume: IndexState | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop = lambda: False,
    checkpoint: Checkpoint | None = None,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
    exclusive: Exclusive = no_exclusion,
    basis: UnitBasis = NEURONS,
) -> IndexState:
    """As :func:`~app.methods.neurons.index.build_state`, the batches run by ``runner``'s workers; a stop
    returns the joined prefix (resumable). ``checkpoint_every`` counts batches, as there."""
    state = start_state(loaded, sentences, k, resume, basis=basis)
    with exclusive():  # the tokenizer only: the model itself stays free for interactive requests
        plan = plan_batches(loaded, sentences, batch_size, max_tokens)
    total = len(sentences)
    step = max(1, runner.shard_sentences // batch_size) * batch_size
    starts = range(state.sentences_done, total, step)
    shards = [IndexShard(plan.shard(start, min(start + step, total)), k, total, basis) for start in starts]
    finished, joined, since_checkpoint = state.sentences_done, 0, 0
    waiting: dict[int, IndexState] = {}
    for index, shard_state in runner.run(loaded, "index", shards, should_stop):
        waiting[index] = shard_state
        finished += shard_state.sentences_done
        while joined in waiting:  # join in batch order: the state stays a prefix of the order
            state = combine(state, waiting.pop(joined))
            joined += 1
            since_checkpoint += step
        if progress is not None:
            progress(finished, total)
        if (
            checkpoint is not None
            and since_checkpoint >= checkpoint_every * batch_size
            and not state.complete
        ):
            checkpoint(state)
            since_checkpoint = 0
    return state
