"""`ConversationFlow`: override points around a conversation turn (RAG, routing, guards).

The engine adds the user's message to the history exactly once, before `on_turn_start`;
`process_with_llm` receives the context to send and may change a copy of it (for example
to add retrieved documents) without touching the stored history.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from parley.chat import ChatContext
from parley.llm import LLMChunk
from parley.tools import FunctionTool

if TYPE_CHECKING:
    from parley.host import RunnerHost, SessionAgent


class ConversationFlow:
    def __init__(self, agent: SessionAgent | None = None) -> None:
        self.agent = agent
        self.session: RunnerHost | None = None  # the `AgentSession` running this flow

    async def on_turn_start(self, text: str) -> None:
        """The user finished a turn saying ``text``; called before the reply is generated."""

    async def on_turn_end(self) -> None:
        """The agent's reply to the turn has been played (or interrupted)."""

    def process_with_llm(
        self, ctx: ChatContext, tools: Sequence[FunctionTool], **options: Any
    ) -> AsyncIterator[LLMChunk]:
        """Produce the reply. The default streams the agent's LLM on ``ctx``."""
        llm = self.session.llm if self.session is not None else None
        if llm is None:
            raise RuntimeError("ConversationFlow is not attached to a session with an LLM")
        return llm.chat(ctx, tools, **options)
