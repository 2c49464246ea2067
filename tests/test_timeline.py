"""Timeline: when epochs begin and end, when probes run, and which publication each visit reads, from the
training loop's events alone (fresh runs, resumes mid-epoch and at epoch ends, gradient accumulation)."""

from __future__ import annotations

import pytest
import torch

from sada_hf.timeline import Timeline, mid_epoch_probe_steps


@pytest.mark.parametrize(
    "probe_every, updates, steps",
    [(1.0, 10, []), (0.5, 10, [5]), (0.25, 10, [3, 5, 8]), (0.25, 2, [1]), (0.5, 1, []), (1 / 3, 7, [3, 5])],
)
def test_mid_epoch_probes_fall_on_fixed_steps(probe_every, updates, steps):
    assert mid_epoch_probe_steps(probe_every, updates) == steps


@pytest.mark.parametrize("probe_every, due", [(1.0, [1, 1, 1, 1]), (2.0, [0, 1, 0, 1]), (0.5, [1, 1, 1, 1])])
def test_epoch_end_probes(probe_every, due):
    timeline = Timeline(probe_every)
    seen = []
    for _ in range(4):
        timeline.begin_epoch(publications=0)
        seen.append(int(timeline.probe_due_at_epoch_end()))
        timeline.end_epoch()
    assert seen == due
    assert not Timeline(None).probe_due_at_epoch_end()


def test_a_fresh_run_counts_loop_epochs_and_places_its_probes():
    timeline = Timeline(0.25)
    timeline.start(global_step=0, resumed=False)
    probes = []
    for epoch in range(2):
        plan = timeline.plan_epoch(global_step=10 * epoch, batches=10)
        assert (plan.loop_epoch, plan.continues_open_epoch, plan.first_step, plan.updates) == (
            epoch,
            False,
            10 * epoch,
            10,
        )
        timeline.begin_epoch(publications=0)
        probes += [at for step in range(10 * epoch + 1, 10 * epoch + 11) if (at := timeline.probe_after_step(step))]
        timeline.end_epoch()
    assert probes == [0.3, 0.5, 0.8, 1.3, 1.5, 1.8]  # after steps 3, 5 and 8 of each epoch


@pytest.mark.parametrize(
    "global_step, completed, epoch_open, ignore_data_skip, continues, first_step",
    [
        (23, 2, True, False, True, 20),  # mid-epoch 2: skip its 3 trained steps, continue the open epoch
        (20, 1, True, False, False, 20),  # saved by epoch 1's last step before its end: end it, then begin 2
        (20, 2, False, False, False, 20),  # saved after epoch 1 ended
        (23, 2, True, True, False, 23),  # ignore_data_skip: the loop restarts epoch 2 from its first batch
    ],
)
def test_a_resumed_run_continues_where_the_loop_does(
    global_step, completed, epoch_open, ignore_data_skip, continues, first_step
):
    timeline = Timeline(0.5, ignore_data_skip=ignore_data_skip)
    timeline.load_state_dict(
        {"epochs_completed": completed, "epoch_open": epoch_open, "probes_completed": 0, "epoch_start_publication": 0}
    )
    timeline.start(global_step, resumed=True)
    plan = timeline.plan_epoch(global_step, batches=10)
    assert (plan.loop_epoch, plan.continues_open_epoch, plan.first_step) == (2, continues, first_step)
    assert timeline.plan_epoch(global_step=30, batches=10).loop_epoch == 3  # then one by one


def test_gradient_accumulation_counts_optimizer_steps():
    timeline = Timeline(0.5, gradient_accumulation_steps=4)
    timeline.start(global_step=7, resumed=True)
    timeline.load_state_dict(
        {"epochs_completed": 1, "epoch_open": True, "probes_completed": 0, "epoch_start_publication": 0}
    )
    plan = timeline.plan_epoch(global_step=7, batches=18)  # 18 batches: 4 + 4 + 4 + 4 + 2 -> 5 updates
    assert (plan.updates, plan.loop_epoch, plan.first_step, plan.probe_steps) == (5, 1, 5, (3,))


def test_visits_read_the_publication_made_before_their_batch_was_built():
    timeline = Timeline(1 / 3, gradient_accumulation_steps=2)
    timeline.start(global_step=0, resumed=False)
    plan = timeline.plan_epoch(global_step=0, batches=6)  # 3 updates: probes after updates 1 and 2
    assert plan.probe_steps == (1, 2)
    timeline.begin_epoch(publications=5)
    batches = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 1]]  # example 1 repeated in the last batch
    needed = timeline.visit_publications(batches, num_examples=12)
    # the probe after update u reaches batches from u * 2 + 1 on: batches 0-2 read 5, 3-4 read 6, 5 reads 7
    assert needed.tolist() == [5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 7, 0]  # 1 keeps its first visit's; 11 has none


def test_without_probes_in_the_epoch_every_visit_reads_the_last_publication():
    timeline = Timeline(1.0)
    timeline.start(global_step=0, resumed=False)
    timeline.plan_epoch(global_step=0, batches=4)
    assert torch.equal(timeline.visit_publications([[0, 1], [2]], num_examples=3), torch.zeros(3, dtype=torch.int64))


def test_begin_epoch_refuses_an_open_epoch():
    timeline = Timeline(None)
    timeline.begin_epoch(publications=0)
    with pytest.raises(RuntimeError, match="end it first"):
        timeline.begin_epoch(publications=0)
