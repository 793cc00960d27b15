"""The notes' claims, each an experiment with a criterion fixed in code (one module per claim).

A new claim joins ``gradkit reproduce`` by one line in :data:`CLAIMS`.
"""

from gradkit.claims import (
    adam_sign_variance,
    adpsgd_matches_allreduce,
    adpsgd_slow_worker,
    averaging_iterates,
    batch_growth,
    compressibility,
    ddg_accuracy,
    ddg_speed,
    decentralized_accuracy,
    depth_acceleration,
    dgc_compression,
    ecq_quantization,
    ggt_conditioning,
    ggt_recurrent,
    gradient_window,
    local_rounds,
    majority_vote,
    msvag_vs_adam,
    noise_stability,
    orthogonal_init,
    pbqn_network,
    pbqn_work,
    saddle_escape,
    shampoo_cnn,
    shampoo_convex,
    sign_geometry,
    signum_matches_adam,
    unbounded_delays,
)
from gradkit.claims.base import SCALES, Claim, ClaimResult, RunContext, Verdict

CLAIMS: dict[str, Claim] = {
    claim.id: claim
    for claim in [
        adam_sign_variance.CLAIM,
        sign_geometry.CLAIM,
        msvag_vs_adam.CLAIM,
        signum_matches_adam.CLAIM,
        adpsgd_matches_allreduce.CLAIM,
        adpsgd_slow_worker.SLOW_WORKER,
        adpsgd_slow_worker.SLOW_NETWORK,
        decentralized_accuracy.CLAIM,
        majority_vote.SIGNSGD_MAJORITY_VOTE,
        majority_vote.BYZANTINE,
        ecq_quantization.CLAIM,
        dgc_compression.CLAIM,
        shampoo_cnn.CLAIM,
        shampoo_convex.CLAIM,
        ggt_conditioning.CLAIM,
        ggt_recurrent.CLAIM,
        gradient_window.CLAIM,
        pbqn_work.CLAIM,
        batch_growth.CLAIM,
        pbqn_network.CLAIM,
        saddle_escape.CLAIM,
        depth_acceleration.CLAIM,
        noise_stability.CLAIM,
        compressibility.CLAIM,
        orthogonal_init.CLAIM,
        unbounded_delays.CLAIM,
        averaging_iterates.CLAIM,
        local_rounds.CLAIM,
        ddg_accuracy.CLAIM,
        ddg_speed.CLAIM,
    ]
}

__all__ = ["CLAIMS", "SCALES", "Claim", "ClaimResult", "RunContext", "Verdict"]
