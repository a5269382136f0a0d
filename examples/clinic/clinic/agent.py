"""The clinic's agent: it finds free appointment slots and books them.

`build` is what the VoiceAgent names in spec.agent.entrypoint ("clinic.agent:build"); the
worker calls it for each call. The calendar here lives in memory so the example runs anywhere;
a real clinic would call its booking system from the two tools.
"""

from __future__ import annotations

from livekit.agents import Agent, RunContext, function_tool

from voicefleet_agent.custom import AgentSetup

OPENING_HOURS = ("09:00", "10:00", "11:00", "14:00", "15:00")


class Calendar:
    """Booked slots per day."""

    def __init__(self) -> None:
        self.booked: dict[str, dict[str, str]] = {}

    def free(self, day: str) -> list[str]:
        taken = self.booked.get(day, {})
        return [slot for slot in OPENING_HOURS if slot not in taken]

    def book(self, day: str, time: str, patient: str) -> bool:
        if time not in self.free(day):
            return False
        self.booked.setdefault(day, {})[time] = patient
        return True


class Receptionist(Agent):
    def __init__(self, setup: AgentSetup, calendar: Calendar) -> None:
        # The VoiceAgent's instructions and its declared HTTP tools, plus this agent's own.
        super().__init__(instructions=setup.instructions, tools=list(setup.tools))
        self._calendar = calendar

    async def on_enter(self) -> None:
        await self.session.say("Hello, this is the clinic. How can I help?")

    @function_tool
    async def find_slots(self, context: RunContext, day: str) -> str:
        """Free appointment times on a day.

        Args:
            day: The day, as YYYY-MM-DD.
        """
        free = self._calendar.free(day)
        return f"free on {day}: {', '.join(free)}" if free else f"nothing free on {day}"

    @function_tool
    async def book(self, context: RunContext, day: str, time: str, patient: str) -> str:
        """Book an appointment.

        Args:
            day: The day, as YYYY-MM-DD.
            time: One of the free times, as HH:MM.
            patient: The patient's name.
        """
        if self._calendar.book(day, time, patient):
            return f"booked {patient} on {day} at {time}"
        return f"{time} on {day} is not free"


def build(setup: AgentSetup) -> Agent:
    return Receptionist(setup, Calendar())
