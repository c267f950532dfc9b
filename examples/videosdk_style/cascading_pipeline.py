"""VideoSDK's "Agent Session" page, Cascading Pipeline tab, on Parley's offline parts.

    python examples/videosdk_style/cascading_pipeline.py

prints ``Talk to the agent: http://127.0.0.1:8000/webrtc/?call=your-room-id&token=...``;
open it, join with your microphone, hear the greeting and ask something. Ctrl-C stops it
(``on_exit`` runs). ``PARLEY_PORT`` picks the port (0: any free one).

Changed from the documentation: the imports, and the provider constructors (Whisper, a
llama.cpp model and Piper instead of OpenAI's STT, LLM and TTS), plus an ``on_exit`` that says
it ran. Whisper transcribes whole utterances: the pipeline cuts them with the default VAD
(Silero). Needs parley-server, parley-webrtc, parley-whisper, parley-llamacpp, parley-piper
and parley-silero; no key, no network once the models are downloaded.
"""

from parley import Agent, AgentSession, CascadingPipeline, JobContext, RoomOptions, WorkerJob
from parley.plugins.llamacpp import LlamaCppLLM
from parley.plugins.piper import PiperTTS
from parley.plugins.whisper import WhisperSTT


class MyAgent(Agent):
    def __init__(self):
        super().__init__(instructions="You are a helpful meeting assistant.")

    async def on_enter(self):
        await self.session.say("Hello! How can I help you today?")

    async def on_exit(self):
        print("on_exit: goodbye", flush=True)


async def start_session(ctx: JobContext):
    pipeline = CascadingPipeline(
        stt=WhisperSTT(),
        llm=LlamaCppLLM(n_threads_batch=2),
        tts=PiperTTS(),
    )
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
