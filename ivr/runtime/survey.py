"""Post-call surveys: ask each question, take a key (or a spoken answer), keep what was said.

The result is set on the call record before the first question, so a caller who hangs up
half-way still leaves a ``partial`` (or ``no_answer``) survey on the record.
"""

from __future__ import annotations

from ivr.call.channel import ListenRequest
from ivr.call.events import survey_answered
from ivr.call.record import SurveyAnswer, SurveyResult
from ivr.flow.model import SurveyNode
from ivr.flow.model_values import SurveyQuestion, SurveySpec
from ivr.flow.node import Node
from ivr.runtime.context import CallContext

# What each scale accepts: key -> stored value, and the words that say it
SCALES: dict[str, dict[str, tuple[int, tuple[str, ...]]]] = {
    "1-5": {
        "1": (1, ("one",)),
        "2": (2, ("two",)),
        "3": (3, ("three",)),
        "4": (4, ("four",)),
        "5": (5, ("five",)),
    },
    "yes-no": {"1": (1, ("yes",)), "2": (0, ("no",))},
}


async def run_survey_node(run: CallContext, node: SurveyNode) -> str:
    """A ``survey:`` node: ask its survey; where to go next (``unanswered`` when the caller
    answered no question, so silence does not pass for a served caller)."""
    result = await run_survey(run, run.flow.surveys[node.survey], "in_call")
    return node.after(result.status)


async def run_survey(run: CallContext, spec: SurveySpec, mode: str) -> SurveyResult:
    """Ask the survey on ``run``'s channel; the result is on ``run.record.survey``."""
    result = SurveyResult(spec.name, mode, "no_answer", satisfaction=spec.satisfaction)
    run.record.survey = result
    try:
        if spec.intro is not None:
            await run.say([spec.intro])
        for question in spec.questions:
            value = await _ask(run, spec, question)
            result.answers.append(SurveyAnswer(question.id, question.scale, value))
        # thanks for answers given, not for silence (no feedback to thank anyone for)
        if spec.thanks is not None and any(a.value is not None for a in result.answers):
            await run.say([spec.thanks])
    finally:
        given = sum(a.value is not None for a in result.answers)
        result.status = (
            "completed" if given == len(spec.questions) else "partial" if given else "no_answer"
        )
        result.at = run.services.clock()
        run.log.info("survey %s (%s): %s", spec.name, mode, result.status)
        # an outbound survey is about another call: announced where it is stored against
        # that call (ivr.outbound.answer)
        if mode != "outbound" and run.services.events is not None:
            run.services.events.emit(survey_answered(run.record.call_id, run.flow.name, result))
    return result


async def _ask(run: CallContext, spec: SurveySpec, question: SurveyQuestion) -> int | None:
    scale = SCALES[question.scale]
    keys = "".join(scale)
    node = Node(id=f"survey:{spec.name}:{question.id}", line=0)
    for _ in range(1 + spec.retries):
        if "speech" in spec.inputs and run.can_hear():
            heard = await run.channel.listen(
                ListenRequest(
                    prompts=run.prompts_for([question.prompt]),
                    choices=tuple((k, words) for k, (_, words) in scale.items()),
                    language=run.vars["language"],
                    dtmf="dtmf" in spec.inputs,
                    no_input_timeout_s=spec.timeout_s,
                )
            )
            key, kind = heard.choice or "", heard.kind
        else:
            key = await run.say([question.prompt], keys)
            key = key or await run.channel.wait_for_digit(spec.timeout_s)
            kind = "dtmf" if key else "no_input"
        if key in scale:
            run.note_input(node, kind, key)
            return scale[key][0]
        run.note_input(node, kind if kind == "no_input" else "no_match", key)
    return None
