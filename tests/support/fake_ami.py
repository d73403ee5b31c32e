"""A small fake Asterisk Manager over TCP for tests: login, the actions the server sends, event
lists, and knobs to drop or ignore an action."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

SECRET = "s3cret"


@dataclass
class FakeManager:
    """Speaks just enough AMI; counts every action it receives by name."""

    drop_on: str = ""  # close the connection on receiving this action (once)
    silent_on: str = ""  # never answer this action
    actions: list[str] = field(default_factory=list)
    logins: int = 0
    channels: set[str] = field(default_factory=set)  # what Getvar finds
    system_name: str = ""  # what CoreSettings says (asterisk.conf systemname)
    originate_reason: str = "4"  # OriginateResponse's Reason: 4 answered (Success), else Failure
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                lines = raw.decode().split("\r\n")
                fields = dict(line.split(": ", 1) for line in lines if ": " in line)
                await self._answer(fields, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async def _answer(self, f: dict[str, str], writer: asyncio.StreamWriter) -> None:
        name, aid = f.get("Action", ""), f.get("ActionID", "")
        self.actions.append(name)
        if name == self.drop_on:
            self.drop_on = ""
            writer.close()
            return
        if name == self.silent_on:
            return
        if name == "Login":
            ok = f.get("Secret") == SECRET
            self.logins += ok
            msg = (
                "Response: Success\r\nMessage: Authentication accepted"
                if ok
                else "Response: Error\r\nMessage: Authentication failed"
            )
            writer.write(f"{msg}\r\nActionID: {aid}\r\n\r\n".encode())
            if ok:
                writer.write(b"Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n")
        elif name == "QueueSummary":
            writer.write(
                f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n"
                f"Message: Queue summary will follow\r\n\r\n"
                f"Event: QueueSummary\r\nActionID: {aid}\r\nQueue: {f['Queue']}\r\n"
                f"LoggedIn: 3\r\nAvailable: 1\r\nCallers: 2\r\nHoldTime: 14\r\n"
                f"TalkTime: 95\r\nLongestHoldTime: 31\r\n\r\n"
                f"Event: QueueSummaryComplete\r\nActionID: {aid}\r\nEventList: Complete\r\n"
                f"ListItems: 1\r\n\r\n".encode()
            )
        elif name == "Getvar":
            if f.get("Channel") in self.channels:
                writer.write(
                    f"Response: Success\r\nActionID: {aid}\r\n"
                    f"Variable: {f['Variable']}\r\nValue: Ringing\r\n\r\n".encode()
                )
            else:  # what Asterisk's manager.c answers
                error = "Response: Error\r\nActionID: {}\r\nMessage: No such channel\r\n\r\n"
                writer.write(error.format(aid).encode())
        elif name == "CoreSettings":
            writer.write(
                f"Response: Success\r\nActionID: {aid}\r\nAMIversion: 9.0.0\r\n"
                f"AsteriskVersion: 22.0.0\r\nSystemName: {self.system_name}\r\n\r\n".encode()
            )
        elif name == "Originate":
            response = "Success" if self.originate_reason == "4" else "Failure"
            writer.write(
                f"Response: Success\r\nActionID: {aid}\r\n"
                f"Message: Originate successfully queued\r\n\r\n"
                f"Event: OriginateResponse\r\nActionID: {aid}\r\nResponse: {response}\r\n"
                f"Channel: {f['Channel']}\r\nReason: {self.originate_reason}\r\n"
                f"Uniqueid: x\r\n\r\n".encode()
            )
        else:
            writer.write(f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n\r\n".encode())
        await writer.drain()

    def send_event(self, text: str) -> None:
        self.writers[-1].write(text.encode())


@dataclass
class CountingManager:
    """A fake manager for diallers, no socket: every Originate succeeds at once and the call
    rings on (its job stays ``dialing``); the reconciler finds every call still up."""

    up: bool = True
    dialled: list[str] = field(default_factory=list)

    async def originate(self, channel: str, **kw: object) -> dict[str, str]:
        self.dialled.append(channel)
        await asyncio.sleep(0)
        return {"Response": "Success", "Reason": "4"}

    async def channel_exists(self, channel_id: str) -> bool:
        return True  # the reconciler touches nothing
