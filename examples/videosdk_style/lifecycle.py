"""VideoSDK's "Agent Session" page, session life cycle: start, run, then always clean up.

    python examples/videosdk_style/lifecycle.py

prints ``Talk to the agent: http://127.0.0.1:8000/webrtc/?call=...``; open it and join with
your microphone. Ctrl-C (or SIGTERM) cancels the entrypoint, so its ``finally`` block closes
the session (``on_exit`` runs) and shuts the job context down. ``PARLEY_PORT`` picks the port
(0: any free one).

Changed from the documentation: the imports and the provider constructors (the offline
"local" parts: Whisper, a llama.cpp model, Piper, with Silero cutting the utterances), plus
``print`` calls that show the order things run in.
"""

import asyncio

from parley import Agent, AgentSession, CascadingPipeline, JobContext, RoomOptions, WorkerJob


class MyAgent(Agent):
    def __init__(self):
        super().__init__(instructions="You are a helpful meeting assistant.")

    async def on_enter(self):
        await self.session.say("Hello! How can I help you today?")

    async def on_exit(self):
        print("on_exit: goodbye", flush=True)


async def entrypoint(ctx: JobContext):
    pipeline = CascadingPipeline(stt="local", llm="local?n_threads_batch=2", tts="local")
    session = AgentSession(agent=MyAgent(), pipeline=pipeline)

    try:
        await ctx.connect()
        await session.start()
        # Keep the session running until manually terminated
        await asyncio.Event().wait()
    finally:
        # Clean up resources when done
        print("finally: closing the session", flush=True)
        await session.close()
        await ctx.shutdown()


def make_context():
    return JobContext(room_options=RoomOptions(room_id="lifecycle-room", name="Assistant Bot"))


if __name__ == "__main__":
    job = WorkerJob(entrypoint=entrypoint, jobctx=make_context)
    job.start()
