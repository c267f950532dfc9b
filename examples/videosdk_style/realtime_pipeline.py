"""VideoSDK's "Agent Session" page, Real-time Pipeline tab, on Parley.

    python examples/videosdk_style/realtime_pipeline.py

prints ``Talk to the agent: http://127.0.0.1:8000/webrtc/?call=your-room-id&token=...``;
open it and join with your microphone. Ctrl-C stops it (``on_exit`` runs). ``PARLEY_PORT``
picks the port (0: any free one).

Changed from the documentation: the imports, the model's constructor, and an ``on_exit``
that says it ran. There is no offline speech-to-speech model, so:

- with ``OPENAI_API_KEY`` set and parley-openai installed, the model is OpenAI's realtime
  model, as in the documentation (your voice goes to OpenAI);
- otherwise it is the testing kit's scripted stand-in, `parley.testing.FakeRealtime`: it hears
  you by loudness and answers each turn with a tone (its words appear in the page's
  transcript). It shows the session's life cycle, not a conversation.
"""

import os

from parley import Agent, AgentSession, JobContext, RealTimePipeline, RoomOptions, WorkerJob
from parley.plugins import list_parts
from parley.testing import FakeRealtime


def realtime_model():
    openai_ready = any(p.name == "openai" and p.deps_ok for p in list_parts("realtime"))
    if os.environ.get("OPENAI_API_KEY") and openai_ready:
        from parley.plugins.openai import OpenAIRealtime

        return OpenAIRealtime(model="gpt-4o-realtime-preview")
    return FakeRealtime(
        replies=["Hello! How can I help you today?", "That is a good question."],
        transcripts=["(you asked a question)"],
    )


class MyAgent(Agent):
    def __init__(self):
        super().__init__(instructions="You are a helpful meeting assistant.")

    async def on_enter(self):
        await self.session.say("Hello! How can I help you today?")

    async def on_exit(self):
        print("on_exit: goodbye", flush=True)


async def start_session(ctx: JobContext):
    model = realtime_model()
    pipeline = RealTimePipeline(model=model)

    session = AgentSession(agent=MyAgent(), pipeline=pipeline)

    await ctx.connect()
    await session.start()
    # Session runs until manually stopped or meeting ends


def make_context():
    return JobContext(
        room_options=RoomOptions(
            room_id="your-room-id",
            auth_token="your-auth-token",
            name="Assistant Bot",
        )
    )


if __name__ == "__main__":
    job = WorkerJob(entrypoint=start_session, jobctx=make_context)
    job.start()
