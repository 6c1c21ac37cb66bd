"""Button gesture + appliance state -> action (pure).

gesture  approval pending*  idle  connecting/listening/working  thinking/speaking  other
press    approve            wake  none                          interrupt          none
double   reject             none  end_session                   end_session        none
long     mute_toggle in every state
(* approval pending counts only in a session; "other" = muted, starting, error)

Why: a press while thinking cancels the answer on its way (same as interrupting
it while spoken); while listening there is nothing to stop, so a stray press does
nothing rather than cutting the user off. A press while muted does nothing: only
the long press (the privacy switch) opens the microphone again.
"""

from __future__ import annotations

from ..vocab import IN_SESSION, ButtonAction, Gesture


def button_action(gesture: Gesture, state: str, approval_pending: bool) -> ButtonAction:
    if gesture == "long":
        return "mute_toggle"
    if gesture == "press":
        if approval_pending and state in IN_SESSION:
            return "approve"
        if state == "idle":
            return "wake"
        if state in ("thinking", "speaking"):
            return "interrupt"
        return "none"
    if gesture == "double":
        if approval_pending and state in IN_SESSION:
            return "reject"
        if state in IN_SESSION:
            return "end_session"
        return "none"
    return "none"
