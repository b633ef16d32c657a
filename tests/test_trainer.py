"""Algorithm 1 training loop: loss goes down, metric improves, events, stop, NaN, EMA, determinism."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from core.data import make_toy2d
from core.metrics import sliced_wasserstein_ratio
from core.mlp import MLPConfig, MLPDenoiser
from core.prediction import EpsilonView, unwrap
from core.sampler import initial_noise, log_snr_timesteps, sample, timesteps
from core.schedules import make_schedule
from core.trainer import (
    FULL_CHAIN_STEPS, LOSS_BUCKETS, TrainConfig, Trainer, TrainingDiverged, cpu_model, device_name, loss_bucket_ranges, loss_weights,
    run_seed,
)

SMALL = MLPConfig(hidden=64, depth=2, emb_dim=32)


def make_trainer(steps: int = 40, **overrides) -> Trainer:
    torch.manual_seed(0)
    config = TrainConfig(steps=steps, batch_size=128, log_every=10, **overrides)
    return Trainer(MLPDenoiser(SMALL), make_schedule("linear", 100), make_toy2d("moons", 2000, seed=0), config)


def sw_ratio(trainer: Trainer) -> float:
    x_T, g = initial_noise((1000, 2), seed=7)
    x0 = sample(trainer.sampling_model, trainer.schedule, x_T, generator=g)
    return sliced_wasserstein_ratio(x0, lambda n, s: make_toy2d("moons", n, seed=s))


def test_short_run_lowers_loss_and_improves_metric() -> None:
    trainer = make_trainer(steps=600, lr=3e-3)
    before = sw_ratio(trainer)
    losses = [loss for ev in trainer.run() for loss in ev.losses]
    assert len(losses) == 600
    first, last = sum(losses[:50]) / 50, sum(losses[-50:]) / 50
    assert last < 0.7 * first, (first, last)
    after = sw_ratio(trainer)
    assert after < 0.5 * before and after < 5, (before, after)


def test_events_and_buckets() -> None:
    trainer = make_trainer(steps=40, preview_every=20, preview_n=8, preview_steps=5)
    events = list(trainer.run())
    kinds = [e.kind for e in events]
    assert kinds == ["step", "step", "preview", "step", "step", "end"]
    assert [e.step for e in events if e.kind == "step"] == [10, 20, 30, 40]
    assert events[-1].reason == "finished" and events[-1].step == 40
    preview = events[2].preview
    assert preview is not None and preview.shape == (8, 2) and torch.isfinite(preview).all()
    assert all(e.samples_per_s > 0 and e.elapsed > 0 for e in events)
    assert len(events[-1].bucket_loss) == LOSS_BUCKETS
    assert sum(1 for v in events[-1].bucket_loss if v == v) >= LOSS_BUCKETS - 2  # most buckets seen


def test_preview_runs_the_configured_quick_chain_or_the_full_ddpm_chain() -> None:
    trainer = make_trainer(preview_n=8, preview_steps=5)  # schedule T = 100
    calls = []
    trainer.ema_model.register_forward_hook(lambda module, inputs, output: calls.append(int(inputs[1][0])))
    ddim = trainer.preview()
    assert calls == timesteps(100, 5, "ddim") and ddim.shape == (8, 2)
    calls.clear()
    ddpm = trainer.preview(full_chain=True)
    assert calls == list(range(100, 0, -1)) and torch.isfinite(ddpm).all()
    log_snr = make_trainer(preview_n=8, preview_method="ddpm", preview_steps=7, preview_spacing="log_snr")
    calls.clear()
    log_snr.ema_model.register_forward_hook(lambda module, inputs, output: calls.append(int(inputs[1][0])))
    log_snr.preview()
    assert calls == log_snr_timesteps(log_snr.schedule, 7, "ddpm") != timesteps(100, 7, "ddpm")
    long = make_trainer(preview_n=8)  # a chain longer than FULL_CHAIN_STEPS: its full-chain preview is capped
    long.schedule = make_schedule("linear", 3000)
    assert long.preview_chain(full_chain=True) == {"method": "ddpm", "steps": FULL_CHAIN_STEPS, "spacing": "log_snr"}


@pytest.mark.parametrize("bad", [{"preview_method": "euler"}, {"preview_spacing": "karras"}])
def test_config_rejects_an_unknown_preview_sampler(bad: dict) -> None:
    with pytest.raises(ValueError, match="preview_"):
        TrainConfig(**bad)


def test_learning_rate_warmup_and_decay() -> None:
    trainer = make_trainer(steps=1000, lr=1e-3, warmup_steps=100, min_lr_ratio=0.1)
    assert trainer.learning_rate(0) == pytest.approx(1e-5)
    assert trainer.learning_rate(99) == pytest.approx(1e-3)
    assert trainer.learning_rate(100) == pytest.approx(1e-3)
    assert trainer.learning_rate(1000) == pytest.approx(1e-4)


def test_stop_from_another_thread_leaves_usable_model() -> None:
    trainer = make_trainer(steps=100_000)
    seen = []
    for ev in trainer.run():
        seen.append(ev)
        if ev.step == 20:
            threading.Thread(target=trainer.stop).start()
    assert seen[-1].kind == "end" and seen[-1].reason == "stopped"
    assert 20 <= trainer.step < 100
    x_T, g = initial_noise((16, 2), seed=0)
    assert torch.isfinite(sample(trainer.sampling_model, trainer.schedule, x_T, generator=g)).all()


def test_a_stopped_run_goes_on_where_it_stopped() -> None:
    """`run()` again after a stop continues the run (it had ended at once, "stopped", for good), to the same weights
    as an unbroken run. A stop asked before a run begins still ends it; a caller's break leaves eval mode."""
    unbroken = make_trainer(steps=40)
    list(unbroken.run())
    trainer = make_trainer(steps=40)
    for ev in trainer.run():
        if ev.kind == "step" and ev.step == 20:
            trainer.stop()
    assert (ev.kind, ev.reason, trainer.step) == ("end", "stopped", 20)
    events = list(trainer.run())
    assert (events[-1].reason, trainer.step) == ("finished", 40)
    for name, value in unbroken.model.state_dict().items():
        assert torch.equal(value, trainer.model.state_dict()[name]), name
    early = make_trainer(steps=40)
    early.stop()
    assert [(ev.kind, ev.reason, early.step) for ev in early.run()] == [("end", "stopped", 0)]
    run = early.run()
    for ev in run:
        assert early.model.training
        early.stop()  # asked, and the caller breaks before the loop hears it: spent all the same
        break
    run.close()
    assert not early.model.training and early.step == 10
    assert list(early.run())[-1].reason == "finished" and early.step == 40


def test_a_continuation_draws_other_batches_t_and_noise_than_the_runs_it_continues() -> None:
    """Seeded by its seed alone, a continuation's step k had drawn the batch, t and ε of the first run's step k
    (`run_seed`); the same continuation twice is the same run, and a new run's seed is its own."""
    assert run_seed(7, 0) == 7 and run_seed(7, 40) != run_seed(7, 80) != 7

    def first_draws(steps_before: int) -> torch.Tensor:
        trainer = make_trainer(steps=1, steps_before=steps_before)
        return torch.rand(8, generator=trainer.generator)

    assert torch.equal(first_draws(40), first_draws(40))
    assert not torch.equal(first_draws(0), first_draws(40))
    with pytest.raises(ValueError, match="steps_before must be a whole number ≥ 0"):
        TrainConfig(steps_before=-1)


def test_numpy_integers_are_taken_as_whole_numbers_and_fractions_are_refused() -> None:
    """A sweep over np.arange gives NumPy integers: TrainConfig(steps=np.int64(200)) had been refused ("steps must be
    a whole number"); fields it did not check (warm-up, seed) had taken 2.5 or -1 without a word."""
    config = TrainConfig(steps=np.int64(200), batch_size=np.int32(64), warmup_steps=np.int64(0), seed=np.uint8(3))
    assert (config.steps, config.batch_size, config.warmup_steps, config.seed) == (200, 64, 0, 3)
    assert all(type(v) is int for v in (config.steps, config.batch_size, config.warmup_steps, config.seed))
    for bad, message in [(dict(steps=np.float64(200)), "steps must be a whole number ≥ 1"),
                         (dict(warmup_steps=2.5), "warmup_steps must be a whole number ≥ 0"),
                         (dict(seed=-1), "seed must be a whole number ≥ 0"),
                         (dict(preview_every=True), "preview_every must be a whole number"),
                         (dict(grad_clip=math.nan), "grad_clip must be a number ≥ 0")]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**bad)


def training_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    """Everything a step may change: weights, EMA weights and the optimiser's moments and step counts."""
    state = {f"model.{k}": v.clone() for k, v in trainer.model.state_dict().items()}
    state |= {f"ema.{k}": v.clone() for k, v in trainer.ema_model.state_dict().items()}
    for i, param_state in enumerate(trainer.optimizer.state.values()):
        state |= {f"adam{i}.{k}": v.clone() for k, v in param_state.items()}
    return state


def assert_same_state(trainer: Trainer, good: dict[str, torch.Tensor]) -> None:
    now = training_state(trainer)
    assert now.keys() == good.keys()
    for k, v in now.items():
        assert torch.equal(v, good[k]), k


def test_nan_loss_stops_with_clear_error_and_keeps_the_last_good_state() -> None:
    trainer = make_trainer(steps=50)  # events every 10 steps: the NaN at step 6 is read at step 10
    for _ in range(5):
        trainer.train_step()
    good = training_state(trainer)
    trainer.data[:] = float("nan")
    with pytest.raises(TrainingDiverged, match="diverged at step 6: the loss or its gradients became NaN"):
        list(trainer.run())
    assert trainer.step == 5  # the steps whose updates were applied
    assert_same_state(trainer, good)
    assert all(v == v for v in trainer.bucket_loss()[:3])  # the NaN steps were not recorded (low t buckets seen)


def test_one_infinite_gradient_skips_every_later_update() -> None:
    """A step with a finite loss but an infinite gradient ends the run there, even though the steps
    queued after it (before the host read the losses) were finite: none of them is applied."""
    trainer = make_trainer(steps=50)
    for _ in range(3):
        trainer.train_step()
    good = training_state(trainer)
    calls = []

    def poison_once(grad: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return grad * float("inf") if len(calls) == 1 else grad

    trainer.model.first.weight.register_hook(poison_once)
    with pytest.raises(TrainingDiverged, match="diverged at step 4"):
        list(trainer.run())
    assert len(calls) == 7  # steps 4..10 ran: the losses are read at the step-10 event
    assert trainer.step == 3
    assert_same_state(trainer, good)
    assert torch.isnan(trainer.train_step())  # and the run stays stopped at its last good state
    assert_same_state(trainer, good)


@pytest.mark.parametrize("T", [1000, 30, 7])
def test_loss_bucket_ranges_are_the_buckets_the_trainer_records(T: int) -> None:
    """Record a "loss" equal to t for every t once: each bucket's mean is then the mean of its range of t."""
    trainer = Trainer(MLPDenoiser(SMALL), make_schedule("cosine", T), make_toy2d("moons", 100), TrainConfig())
    t = torch.arange(1, T + 1)
    trainer._record_buckets(t, t.double())
    ranges = loss_bucket_ranges(T)
    assert ranges[0][0] == 1 and ranges[-1][1] == T
    for (first, last), mean in zip(ranges, trainer.bucket_loss()):
        if first > last:  # an empty range (T < LOSS_BUCKETS)
            assert math.isnan(mean)
        else:
            assert mean == (first + last) / 2, (first, last, mean)


def test_divergence_hands_over_the_losses_of_the_good_steps_no_event_reported() -> None:
    trainer = make_trainer(steps=50)  # events every 10 steps
    calls = []

    def poison_fourth(grad: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return grad * float("inf") if len(calls) == 4 else grad

    trainer.model.first.weight.register_hook(poison_fourth)
    with pytest.raises(TrainingDiverged, match="diverged at step 4") as diverged:
        list(trainer.run())
    assert len(diverged.value.losses) == 3 and all(0 < v < 10 for v in diverged.value.losses)


def test_healthy_steps_return_their_loss_without_reading_it() -> None:
    trainer = make_trainer()
    loss = trainer.train_step()
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and 0 < float(loss) < 10
    assert trainer.optimizer.state  # the update was applied
    assert not torch.equal(trainer.model.first.weight, training_state(make_trainer())["model.first.weight"])


def test_ema_lags_the_weights_and_is_used_for_sampling() -> None:
    trainer = make_trainer(steps=30, ema_decay=0.99)
    list(trainer.run())
    assert trainer.sampling_model is trainer.ema_model
    w, e = trainer.model.first.weight, trainer.ema_model.first.weight
    assert not torch.equal(w, e)
    no_ema = make_trainer(steps=5, ema_decay=0.0)
    assert no_ema.sampling_model is no_ema.model


def test_ema_follows_its_recursion_with_the_warm_up_decay() -> None:
    """θ_ema ← d_k·θ_ema + (1 − d_k)·θ after step k (k = 0, 1, …), d_k = min(d, (1 + k)/(10 + k)), replayed by hand."""
    trainer = make_trainer(ema_decay=0.95)
    replay = {name: p.detach().clone() for name, p in trainer.ema_model.named_parameters()}
    for k in range(12):  # d_k = 0.1, 0.18, …, 0.5, …, 0.95 from k = 170: the warm-up decides all of these
        trainer.train_step()
        d = min(0.95, (1 + k) / (10 + k))
        for name, p in trainer.model.named_parameters():
            replay[name] = d * replay[name] + (1 - d) * p.detach()
    for name, p in trainer.ema_model.named_parameters():
        torch.testing.assert_close(p, replay[name], rtol=0, atol=1e-6)


def test_steps_after_a_divergence_that_no_event_read_are_not_counted() -> None:
    """A run left another way than its events (Ctrl-C in the CLI, an error in the app) reads its last losses before
    it records how many steps it learnt from."""
    trainer = make_trainer(steps=50)
    for _ in range(3):
        trainer.train_step()
    trainer.data[:] = float("nan")
    for _ in range(4):
        trainer.train_step()
    assert trainer.step == 7  # not read yet: the device was never waited for
    with pytest.raises(TrainingDiverged, match="diverged at step 4"):
        trainer.read_losses()
    assert trainer.step == 3 and trainer.read_losses() == []  # read once


def test_a_preview_that_fails_leaves_the_network_in_the_mode_it_was_in(monkeypatch) -> None:
    trainer = make_trainer(ema_decay=0.0)  # the network that trains is the one sampled from
    trainer.model.train()

    def fail(*_, **__):
        raise RuntimeError("out of memory")
    monkeypatch.setattr("core.trainer.sample", fail)
    with pytest.raises(RuntimeError):
        trainer.preview(4)
    assert trainer.model.training
    modes = []
    real = trainer._target_errors
    monkeypatch.setattr(trainer, "_target_errors", lambda *a: modes.append(trainer.model.training) or real(*a))
    trainer.measure_error_by_t(per_range=2)  # measured without dropout, then back in training mode
    assert modes and not any(modes) and trainer.model.training


def test_min_snr_weights_match_their_closed_form() -> None:
    schedule = make_schedule("linear", 1000)
    assert torch.equal(loss_weights(schedule, 0.0), torch.ones(1001))
    w = loss_weights(schedule, 5.0)
    snr = schedule.alpha_bars / (1 - schedule.alpha_bars)
    t_low, t_high = 10, 600  # SNR_10 ≈ 1e3 > 5 (nearly clean), SNR_600 ≈ 0.05 < 5 (noisy)
    assert snr[t_low] > 5 > snr[t_high]
    assert float(w[t_low]) == pytest.approx(5.0 / float(snr[t_low]), rel=1e-6)
    assert float(w[t_high]) == 1.0
    assert float(w[0]) == 0.0 and bool(((w[1:] > 0) & (w[1:] <= 1)).all())
    assert bool((w[1:].diff() >= 0).all())  # SNR falls with t, so the weight rises to 1


def test_min_snr_weighting_changes_the_loss_only_where_snr_exceeds_gamma() -> None:
    def first_losses(gamma: float) -> list[float]:
        return [x for e in make_trainer(steps=10, min_snr_gamma=gamma).run() for x in e.losses]

    plain = first_losses(0.0)
    max_snr = float(make_schedule("linear", 100).snr[1])
    assert first_losses(max_snr * 2) == pytest.approx(plain, rel=1e-6)  # γ above every SNR_t: w_t = 1
    assert first_losses(1.0)[0] < plain[0]  # same batch, the nearly clean timesteps weigh less


def test_compiled_model_trains_like_the_eager_one() -> None:
    """``compile=True`` (the CLI's --compile) runs the same steps through torch.compile: same losses as eager,
    and the saved weights keep their plain names (no ``_orig_mod.`` prefix)."""
    runs = {}
    for compiled in (False, True):
        trainer = make_trainer(steps=4, compile=compiled)
        runs[compiled] = [loss for ev in trainer.run() for loss in ev.losses]
    assert runs[True] == pytest.approx(runs[False], rel=1e-4)
    assert set(trainer.model.state_dict()) == set(MLPDenoiser(SMALL).state_dict())


def test_same_seed_same_run() -> None:
    a, b = make_trainer(steps=30, seed=3), make_trainer(steps=30, seed=3)
    la = [x for e in a.run() for x in e.losses]
    lb = [x for e in b.run() for x in e.losses]
    assert la == lb
    c = make_trainer(steps=30, seed=4)
    assert [x for e in c.run() for x in e.losses] != la


def test_a_run_ends_at_its_time_limit() -> None:
    trainer = make_trainer(steps=10_000, max_seconds=0.5)
    events = list(trainer.run())
    assert events[-1].kind == "end" and events[-1].reason == "time limit" and 0 < trainer.step < 10_000


@pytest.mark.parametrize(
    "overrides, message",
    [(dict(steps=0), "steps"), (dict(lr=-1.0), "learning rate"), (dict(ema_decay=1.0), "ema_decay"),
     (dict(batch_size=2.5), "batch_size"), (dict(amp="fp8"), "amp"), (dict(min_snr_gamma=-1.0), "min_snr")],
)
def test_bad_config(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)


def test_bad_data_and_device() -> None:
    with pytest.raises(ValueError, match="NaN"):
        Trainer(MLPDenoiser(SMALL), make_schedule("linear", 100), torch.full((10, 2), float("nan")), TrainConfig())
    with pytest.raises(ValueError, match="device"):
        Trainer(MLPDenoiser(SMALL), make_schedule("linear", 100), torch.zeros(10, 2), TrainConfig(device="tpu"))


def test_device_name_says_which_cpu_and_how_many_threads() -> None:
    """Recorded as a checkpoint's "hardware": CPUs of one kind differ by 2× in speed, so say which."""
    name = device_name(torch.device("cpu"))
    assert name.startswith("CPU (") and name.endswith(f"{torch.get_num_threads()} thread"
                                                      f"{'s' if torch.get_num_threads() != 1 else ''})"), name
    assert device_name(torch.device("cpu"), 1).endswith(" 1 thread)")  # a server's thread: "1 threads" had been said
    assert device_name(torch.device("cpu"), 2).endswith(" 2 threads)")  # a training run's, whatever the caller's
    if cpu_model():
        assert cpu_model() in name


@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_x0_and_v_runs_learn_and_sample_through_their_eps_view(prediction: str) -> None:
    trainer = make_trainer(steps=600, lr=3e-3, prediction=prediction)
    before = sw_ratio(trainer)
    losses = [loss for ev in trainer.run() for loss in ev.losses]
    assert sum(losses[-50:]) < 0.85 * sum(losses[:50])  # x_0 and v errors keep the data's spread at large t
    assert isinstance(trainer.sampling_model, EpsilonView) and trainer.sampling_model.net is trainer.ema_model
    after = sw_ratio(trainer)
    assert after < 0.5 * before and after < 5, (before, after)


class Zero(torch.nn.Module):
    """Predicts 0 whatever it is given (a parameter, so that the optimiser has something to hold)."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x_t) + 0 * self.unused


def test_the_error_by_t_is_in_eps_units_for_every_target() -> None:
    """x̂_0 = 0 on data x_0 = (1, 1): the x_0 error is 1 at every t, the ε error SNR_t (‖ε − ε̂‖² = SNR_t·‖x_0 − x̂_0‖²)."""
    schedule = make_schedule("linear", 100)
    config = TrainConfig(steps=5, batch_size=512, log_every=5, prediction="x0", ema_decay=0.0)
    trainer = Trainer(Zero(), schedule, torch.ones(10, 2), config)
    losses = [loss for ev in trainer.run() for loss in ev.losses]
    assert losses == pytest.approx([1.0] * 5)
    snr = schedule.snr
    for (first, last), value in zip(loss_bucket_ranges(100), trainer.bucket_loss()):
        assert float(snr[last]) * (1 - 1e-5) <= value <= float(snr[first]) * (1 + 1e-5)


class GaussianOptimum(torch.nn.Module):
    """The ideal ε̂ for data x_0 ~ N(0, σ²I): E[ε | x_t] = √(1 − ᾱ_t)·x_t / (ᾱ_t·σ² + 1 − ᾱ_t), whose error per
    dimension is ᾱ_t·σ² / (ᾱ_t·σ² + 1 − ᾱ_t) (the variance of ε left given x_t)."""

    def __init__(self, alpha_bars: torch.Tensor, sigma: float) -> None:
        super().__init__()
        self.alpha_bars, self.var = alpha_bars, sigma**2
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = self.alpha_bars[t].float().unsqueeze(1)
        return (1 - ab).sqrt() * x_t / (ab * self.var + 1 - ab) + 0 * self.unused


def test_the_measured_error_by_t_is_the_closed_form_and_leaves_the_run_as_it_was() -> None:
    schedule, sigma = make_schedule("cosine", 100), 2.0
    data = sigma * torch.randn(20000, 2, generator=torch.Generator().manual_seed(0))
    config = TrainConfig(steps=3, batch_size=256)
    trainer = Trainer(GaussianOptimum(schedule.alpha_bars, sigma), schedule, data, config)
    measured = trainer.measure_error_by_t(per_range=4000)
    ab = schedule.alpha_bars.double()
    optimum = ab * sigma**2 / (ab * sigma**2 + 1 - ab)
    for (first, last), value in zip(loss_bucket_ranges(100), measured):
        expected = float(optimum[first:last + 1].mean())
        assert value == pytest.approx(expected, rel=0.08), (first, last, value, expected)
    untouched = Trainer(GaussianOptimum(schedule.alpha_bars, sigma), schedule, data, config)
    assert torch.equal(trainer.train_step(), untouched.train_step())  # its own generator: the run's draws are the same
    # in ε units whatever the target, with empty ranges where T < LOSS_BUCKETS: x̂_0 = 0 on x_0 = (1, 1) is SNR_t
    short = make_schedule("cosine", 7)
    zero = Trainer(Zero(), short, torch.ones(10, 2), TrainConfig(prediction="x0"))
    for (first, last), value in zip(loss_bucket_ranges(7), zero.measure_error_by_t(per_range=8)):
        if first > last:
            assert math.isnan(value)
        else:
            assert float(short.snr[last]) * (1 - 1e-5) <= value <= float(short.snr[first]) * (1 + 1e-5)


def test_a_loaded_view_trains_its_network_on_its_own_target_only() -> None:
    schedule = make_schedule("linear", 100)
    view = EpsilonView(MLPDenoiser(SMALL), schedule, "v")
    data = make_toy2d("moons", 500, seed=0)
    with pytest.raises(ValueError, match="the model predicts v.*set the prediction to v"):
        Trainer(view, schedule, data, TrainConfig(steps=2))
    trainer = Trainer(view, schedule, data, TrainConfig(steps=2, prediction="v"))
    assert trainer.model is view.net and unwrap(trainer.sampling_model)[1] == "v"


def test_training_draws_every_t_from_1_to_T() -> None:
    """Algorithm 1: t ~ Uniform{1, …, T}. Every chain starts at t = T, so a draw that stopped at T − 1 would leave
    the first step to an untrained ε̂; on T = 3 each t has a range of its own in the error by t."""
    trainer = Trainer(MLPDenoiser(SMALL), make_schedule("cosine", 3), make_toy2d("moons", 500, seed=0),
                      TrainConfig(batch_size=64))
    for _ in range(5):
        trainer.train_step()
    seen = [first for (first, last), value in zip(loss_bucket_ranges(3), trainer.bucket_loss()) if value == value]
    assert seen == [1, 2, 3]
