"""Credit assignment in a turn-taking game: GAE over each agent's own decisions."""

from __future__ import annotations

import jax
import jax.numpy as jnp


# At every env step one agent moves (the env applies only the mover's action). Each agent
# learns only from its *decisions*: the steps where it is the mover (``my_turn`` is 1 in its own
# observation), PPO plays that role in that env, and the move is not an exploring start's random
# counter. Its other steps are not in its loss (the rollout only stores the mover's sample; see
# :mod:`eqx_jax.ppo.plan`), and the advantage estimator skips them:
#
# * the reward of a decision at step t is the sum of the rewards the agent receives from step t up
#   to (not including) its next decision in the same episode, i.e. its own step's reward plus the
#   reward of the opponent's reply (a deal when the opponent accepts, a walk-away, a timeout);
# * the "next state" of a decision is the agent's next decision in the same episode; there is none
#   (value 0) when the episode ends before it (on either agent's move);
# * the discount gamma (and lambda) applies once per *own decision* (an agent's MDP only has its
#   own decision points; the game's rewards already decay with the round number);
# * all this is one reverse ``lax.scan`` over time per agent, carrying per env (value of the next
#   decision, its GAE advantage, rewards accumulated since). A ``done`` at step t resets the carry
#   to "terminal" *before* step t's reward is added, so the final reward is credited to the
#   agent's last decision of that episode even when the opponent ended it, and nothing leaks
#   across the auto-reset into the previous episode.
# * bootstrap at the end of a rollout of T steps (obs_T is the observation after the last step,
#   already of a new episode if step T-1 ended one, in which case the carry is reset anyway):
#   the agent whose turn it is at obs_T bootstraps with V(obs_T). The other agent's last decision
#   (at T-1) waits for the opponent's reply, which the rollout has not seen. Rather than dropping
#   that decision (which would drop counters but keep accepts at T-1, a biased sample), the loop
#   plays one *look-ahead* step from obs_T that is not committed (the next rollout restarts from
#   obs_T and draws the reply again): its reward r_T and done_T, and V(obs_{T+1}) of the agent
#   (obs_{T+1} is its turn again unless done_T), give the bootstrap carry
#   (value (1 - done_T) V(obs_{T+1}), advantage 0, accumulated reward r_T). This is a one-sample,
#   unbiased estimate of the continuation under the current policies.
def turn_based_gae(
    decision: jax.Array,
    reward: jax.Array,
    done: jax.Array,
    value: jax.Array,
    bootstrap_value: jax.Array,
    bootstrap_reward: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """GAE over one agent's own decisions. Time-major arrays ``(T, ...)``.

    decision: bool, the agent acted at step t (it is trained on that step).
    reward: the agent's reward from step t (paid after the mover's action at t).
    done: the episode ended at step t (the following step belongs to a new episode).
    value: the agent's V(obs_t) (only read where ``decision``).
    bootstrap_value, bootstrap_reward ``(...)``: the carry after the last step (see above):
    value of the agent's next decision after the rollout (0 if none) and the rewards it gets
    before it.
    Returns ``(advantages, returns)``, 0 where not ``decision``.
    """
    decision = decision.astype(bool)
    alive_f = 1.0 - done.astype(jnp.float32)

    def body(carry, x):
        next_value, next_adv, acc = carry
        d, r, alive, v = x
        next_value, next_adv, acc = next_value * alive, next_adv * alive, acc * alive
        r_total = r + acc
        delta = r_total + gamma * next_value - v
        adv = delta + gamma * gae_lambda * next_adv
        carry = (jnp.where(d, v, next_value), jnp.where(d, adv, next_adv),
                 jnp.where(d, 0.0, r_total))
        return carry, jnp.where(d, adv, 0.0)

    boot = jnp.asarray(bootstrap_value, jnp.float32)
    init = (boot, jnp.zeros_like(boot), jnp.asarray(bootstrap_reward, jnp.float32))
    xs = (decision, reward.astype(jnp.float32), alive_f, value.astype(jnp.float32))
    _, adv = jax.lax.scan(body, init, xs, reverse=True)
    return adv, jnp.where(decision, adv + value, 0.0)
