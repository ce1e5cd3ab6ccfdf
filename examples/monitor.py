"""A monitor: poll with an activity, sleep on a durable timer, and loop with continue-as-new.

Each poll starts a fresh execution (`goto(..., continue_as_new=True)`), so the
history stays short however long the monitor runs. Run alone:

    python -m examples.monitor --address 127.0.0.1:4001
"""

from __future__ import annotations

from datetime import timedelta

import attrs

import durable
from examples._run import parse_address


@attrs.frozen
class Watch:
    job: str
    polls: int = 0
    max_polls: int = 10
    interval_seconds: float = 0.5


@durable.activity
def job_status(ctx: durable.ActivityContext, watch: Watch) -> str:
    # A stand-in for a real status check: the job finishes on the third poll.
    return "done" if watch.polls >= 2 else "running"


class JobMonitor(durable.Orchestration[Watch, str]):
    """Polls a job until it is done or the poll budget runs out."""

    @durable.step(start=True)
    async def poll(self, watch: Watch) -> str | durable.Goto:
        status = await self.call_activity(job_status, watch)
        self.set_custom_status({"job": watch.job, "polls": watch.polls + 1, "status": status})
        if status == "done":
            return f"{watch.job} finished after {watch.polls + 1} polls"
        if watch.polls + 1 >= watch.max_polls:
            return f"{watch.job} still running after {watch.max_polls} polls"
        return self.goto(self.wait, watch)

    @durable.step
    async def wait(self, watch: Watch) -> durable.Goto:
        await self.create_timer(timedelta(seconds=watch.interval_seconds))
        return self.goto(self.poll, attrs.evolve(watch, polls=watch.polls + 1), continue_as_new=True)


def main(address: str) -> str:
    with durable.Worker(address, orchestrations=[JobMonitor], activities=[job_status]), durable.Client(
        address
    ) as client:
        return client.start(JobMonitor, Watch("nightly-export")).result(timeout=60)


if __name__ == "__main__":
    print(main(parse_address(__doc__ or "")))
