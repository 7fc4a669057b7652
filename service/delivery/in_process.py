"""The delivery worker inside `onramp serve`, for a deployment of one process kind."""

from __future__ import annotations

import asyncio

from service.delivery.worker import DeliveryWorker


class InProcessWorker:
    """The worker as a task of the API process (`serve`), started and stopped with it."""

    def __init__(self, worker: DeliveryWorker) -> None:
        self.worker = worker
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.worker.run(self._stop))

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
