//! The state table of RFC 1661 §4.1 as a pure function: states, events, actions and
//! [`transition`]. Nothing here has side effects; [`Fsm`](super::Fsm) runs it.

/// The ten states of RFC 1661 §4.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// 0: lower layer down, no Open.
    Initial,
    /// 1: Open done, waiting for the lower layer.
    Starting,
    /// 2: lower layer up, no Open (or closed).
    Closed,
    /// 3: negotiation gave up or the peer terminated; waiting for a Configure-Request or Down.
    Stopped,
    /// 4: Terminate-Request sent after Close.
    Closing,
    /// 5: Terminate-Request sent (or acknowledged) without Close.
    Stopping,
    /// 6: Configure-Request sent, nothing acknowledged yet.
    RequestSent,
    /// 7: our Configure-Request was acknowledged, the peer's not yet.
    AckReceived,
    /// 8: we acknowledged the peer's Configure-Request, ours is outstanding.
    AckSent,
    /// 9: both directions negotiated.
    Opened,
}

impl State {
    /// Whether the restart timer runs in this state (Closing, Stopping, and the three
    /// negotiating states).
    pub const fn restart_timer_runs(self) -> bool {
        matches!(
            self,
            State::Closing
                | State::Stopping
                | State::RequestSent
                | State::AckReceived
                | State::AckSent
        )
    }

    /// Whether a Configure-Request of ours is being negotiated (Req-Sent, Ack-Rcvd, Ack-Sent).
    pub const fn is_negotiating(self) -> bool {
        matches!(
            self,
            State::RequestSent | State::AckReceived | State::AckSent
        )
    }
}

/// The events of RFC 1661 §4.3, named as in the state table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RfcEvent {
    /// Lower layer is up.
    Up,
    /// Lower layer is down.
    Down,
    /// Administrative Open.
    Open,
    /// Administrative Close.
    Close,
    /// TO+: restart timer expired, restart counter still above zero.
    TimeoutPlus,
    /// TO-: restart timer expired, restart counter exhausted.
    TimeoutMinus,
    /// RCR+: Configure-Request received, every option acceptable.
    RcrPlus,
    /// RCR-: Configure-Request received, answered with Nak or Reject.
    RcrMinus,
    /// RCA: Configure-Ack received.
    Rca,
    /// RCN: Configure-Nak or Configure-Reject received.
    Rcn,
    /// RTR: Terminate-Request received.
    Rtr,
    /// RTA: Terminate-Ack received.
    Rta,
    /// RUC: packet with an unknown code received.
    Ruc,
    /// RXJ+: Code-Reject or Protocol-Reject of something we can do without.
    RxjPlus,
    /// RXJ-: Code-Reject or Protocol-Reject that makes going on impossible.
    RxjMinus,
    /// RXR: Echo-Request, Echo-Reply or Discard-Request (or another code the protocol handled).
    Rxr,
}

impl RfcEvent {
    /// All 16 events, in the order of the RFC table.
    pub const ALL: [RfcEvent; 16] = [
        RfcEvent::Up,
        RfcEvent::Down,
        RfcEvent::Open,
        RfcEvent::Close,
        RfcEvent::TimeoutPlus,
        RfcEvent::TimeoutMinus,
        RfcEvent::RcrPlus,
        RfcEvent::RcrMinus,
        RfcEvent::Rca,
        RfcEvent::Rcn,
        RfcEvent::Rtr,
        RfcEvent::Rta,
        RfcEvent::Ruc,
        RfcEvent::RxjPlus,
        RfcEvent::RxjMinus,
        RfcEvent::Rxr,
    ];
}

impl State {
    /// All 10 states, in the order of the RFC table.
    pub const ALL: [State; 10] = [
        State::Initial,
        State::Starting,
        State::Closed,
        State::Stopped,
        State::Closing,
        State::Stopping,
        State::RequestSent,
        State::AckReceived,
        State::AckSent,
        State::Opened,
    ];
}

/// The actions of RFC 1661 §4.4, named as in the state table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// This-Layer-Up.
    Tlu,
    /// This-Layer-Down.
    Tld,
    /// This-Layer-Started.
    Tls,
    /// This-Layer-Finished.
    Tlf,
    /// Initialize-Restart-Count (Max-Configure before scr, Max-Terminate before str).
    Irc,
    /// Zero-Restart-Count (and run the restart timer once more, so the Terminate-Ack can leave).
    Zrc,
    /// Send-Configure-Request.
    Scr,
    /// Send-Configure-Ack.
    Sca,
    /// Send-Configure-Nak or Configure-Reject.
    Scn,
    /// Send-Terminate-Request.
    Str,
    /// Send-Terminate-Ack.
    Sta,
    /// Send-Code-Reject.
    Scj,
    /// Send-Echo-Reply.
    Ser,
}

/// RFC 1661 §4.1: the next state and the actions for `event` in `state`, or `None` for the
/// cells marked `-` (an event that cannot happen in a correct implementation: no transition is
/// taken).
///
/// The `r`, `p` and `x` footnotes are not part of the result; [`Fsm`](super::Fsm) applies them.
pub fn transition(state: State, event: RfcEvent) -> Option<(State, &'static [Action])> {
    use Action::*;
    use RfcEvent as E;
    use State::*;
    let cell: (State, &'static [Action]) = match (event, state) {
        (E::Up, Initial) => (Closed, &[]),
        (E::Up, Starting) => (RequestSent, &[Irc, Scr]),
        (E::Up, _) => return None,

        (E::Down, Initial | Starting) => return None,
        (E::Down, Closed) => (Initial, &[]),
        (E::Down, Stopped) => (Starting, &[Tls]),
        (E::Down, Closing) => (Initial, &[]),
        (E::Down, Stopping | RequestSent | AckReceived | AckSent) => (Starting, &[]),
        (E::Down, Opened) => (Starting, &[Tld]),

        (E::Open, Initial) => (Starting, &[Tls]),
        (E::Open, Starting) => (Starting, &[]),
        (E::Open, Closed) => (RequestSent, &[Irc, Scr]),
        (E::Open, Stopped) => (Stopped, &[]),
        (E::Open, Closing | Stopping) => (Stopping, &[]),
        (E::Open, RequestSent) => (RequestSent, &[]),
        (E::Open, AckReceived) => (AckReceived, &[]),
        (E::Open, AckSent) => (AckSent, &[]),
        (E::Open, Opened) => (Opened, &[]),

        (E::Close, Initial) => (Initial, &[]),
        (E::Close, Starting) => (Initial, &[Tlf]),
        (E::Close, Closed | Stopped) => (Closed, &[]),
        (E::Close, Closing | Stopping) => (Closing, &[]),
        (E::Close, RequestSent | AckReceived | AckSent) => (Closing, &[Irc, Str]),
        (E::Close, Opened) => (Closing, &[Tld, Irc, Str]),

        (E::TimeoutPlus, Closing) => (Closing, &[Str]),
        (E::TimeoutPlus, Stopping) => (Stopping, &[Str]),
        (E::TimeoutPlus, RequestSent | AckReceived) => (RequestSent, &[Scr]),
        (E::TimeoutPlus, AckSent) => (AckSent, &[Scr]),
        (E::TimeoutPlus, _) => return None,

        (E::TimeoutMinus, Closing) => (Closed, &[Tlf]),
        (E::TimeoutMinus, Stopping | RequestSent | AckReceived | AckSent) => (Stopped, &[Tlf]),
        (E::TimeoutMinus, _) => return None,

        (E::RcrPlus | E::RcrMinus | E::Rca | E::Rcn | E::Rtr | E::Rta, Initial | Starting) => {
            return None;
        }
        (E::RcrPlus, Closed) => (Closed, &[Sta]),
        (E::RcrPlus, Stopped) => (AckSent, &[Irc, Scr, Sca]),
        (E::RcrPlus, Closing) => (Closing, &[]),
        (E::RcrPlus, Stopping) => (Stopping, &[]),
        (E::RcrPlus, RequestSent) => (AckSent, &[Sca]),
        (E::RcrPlus, AckReceived) => (Opened, &[Sca, Tlu]),
        (E::RcrPlus, AckSent) => (AckSent, &[Sca]),
        (E::RcrPlus, Opened) => (AckSent, &[Tld, Scr, Sca]),

        (E::RcrMinus, Closed) => (Closed, &[Sta]),
        (E::RcrMinus, Stopped) => (RequestSent, &[Irc, Scr, Scn]),
        (E::RcrMinus, Closing) => (Closing, &[]),
        (E::RcrMinus, Stopping) => (Stopping, &[]),
        (E::RcrMinus, RequestSent) => (RequestSent, &[Scn]),
        (E::RcrMinus, AckReceived) => (AckReceived, &[Scn]),
        (E::RcrMinus, AckSent) => (RequestSent, &[Scn]),
        (E::RcrMinus, Opened) => (RequestSent, &[Tld, Scr, Scn]),

        (E::Rca, Closed) => (Closed, &[Sta]),
        (E::Rca, Stopped) => (Stopped, &[Sta]),
        (E::Rca, Closing) => (Closing, &[]),
        (E::Rca, Stopping) => (Stopping, &[]),
        (E::Rca, RequestSent) => (AckReceived, &[Irc]),
        (E::Rca, AckReceived) => (RequestSent, &[Scr]),
        (E::Rca, AckSent) => (Opened, &[Irc, Tlu]),
        (E::Rca, Opened) => (RequestSent, &[Tld, Scr]),

        (E::Rcn, Closed) => (Closed, &[Sta]),
        (E::Rcn, Stopped) => (Stopped, &[Sta]),
        (E::Rcn, Closing) => (Closing, &[]),
        (E::Rcn, Stopping) => (Stopping, &[]),
        (E::Rcn, RequestSent) => (RequestSent, &[Irc, Scr]),
        (E::Rcn, AckReceived) => (RequestSent, &[Scr]),
        (E::Rcn, AckSent) => (AckSent, &[Irc, Scr]),
        (E::Rcn, Opened) => (RequestSent, &[Tld, Scr]),

        (E::Rtr, Closed) => (Closed, &[Sta]),
        (E::Rtr, Stopped) => (Stopped, &[Sta]),
        (E::Rtr, Closing) => (Closing, &[Sta]),
        (E::Rtr, Stopping) => (Stopping, &[Sta]),
        (E::Rtr, RequestSent | AckReceived | AckSent) => (RequestSent, &[Sta]),
        (E::Rtr, Opened) => (Stopping, &[Tld, Zrc, Sta]),

        (E::Rta, Closed) => (Closed, &[]),
        (E::Rta, Stopped) => (Stopped, &[]),
        (E::Rta, Closing) => (Closed, &[Tlf]),
        (E::Rta, Stopping) => (Stopped, &[Tlf]),
        (E::Rta, RequestSent | AckReceived) => (RequestSent, &[]),
        (E::Rta, AckSent) => (AckSent, &[]),
        (E::Rta, Opened) => (RequestSent, &[Tld, Scr]),

        (E::Ruc | E::RxjPlus | E::RxjMinus | E::Rxr, Initial | Starting) => return None,
        (E::Ruc, other) => (other, &[Scj]),

        (E::RxjPlus, RequestSent | AckReceived) => (RequestSent, &[]),
        (E::RxjPlus, other) => (other, &[]),

        (E::RxjMinus, Closed | Closing) => (Closed, &[Tlf]),
        (E::RxjMinus, Stopped | Stopping | RequestSent | AckReceived | AckSent) => {
            (Stopped, &[Tlf])
        }
        (E::RxjMinus, Opened) => (Stopping, &[Tld, Irc, Str]),

        (E::Rxr, Opened) => (Opened, &[Ser]),
        (E::Rxr, other) => (other, &[]),
    };
    Some(cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1661 §4.1, cell by cell, as printed in the RFC (footnote letters kept).
    const RFC_TABLE: [(&str, [&str; 10]); 16] = [
        //            Initial   Starting     Closed       Stopped          Closing   Stopping  Req-Sent     Ack-Rcvd     Ack-Sent     Opened
        (
            "Up",
            ["2", "irc,scr/6", "-", "-", "-", "-", "-", "-", "-", "-"],
        ),
        (
            "Down",
            ["-", "-", "0", "tls/1", "0", "1", "1", "1", "1", "tld/1"],
        ),
        (
            "Open",
            [
                "tls/1",
                "1",
                "irc,scr/6",
                "3r",
                "5r",
                "5r",
                "6",
                "7",
                "8",
                "9r",
            ],
        ),
        (
            "Close",
            [
                "0",
                "tlf/0",
                "2",
                "2",
                "4",
                "4",
                "irc,str/4",
                "irc,str/4",
                "irc,str/4",
                "tld,irc,str/4",
            ],
        ),
        (
            "TO+",
            [
                "-", "-", "-", "-", "str/4", "str/5", "scr/6", "scr/6", "scr/8", "-",
            ],
        ),
        (
            "TO-",
            [
                "-", "-", "-", "-", "tlf/2", "tlf/3", "tlf/3p", "tlf/3p", "tlf/3p", "-",
            ],
        ),
        (
            "RCR+",
            [
                "-",
                "-",
                "sta/2",
                "irc,scr,sca/8",
                "4",
                "5",
                "sca/8",
                "sca,tlu/9",
                "sca/8",
                "tld,scr,sca/8",
            ],
        ),
        (
            "RCR-",
            [
                "-",
                "-",
                "sta/2",
                "irc,scr,scn/6",
                "4",
                "5",
                "scn/6",
                "scn/7",
                "scn/6",
                "tld,scr,scn/6",
            ],
        ),
        (
            "RCA",
            [
                "-",
                "-",
                "sta/2",
                "sta/3",
                "4",
                "5",
                "irc/7",
                "scr/6x",
                "irc,tlu/9",
                "tld,scr/6x",
            ],
        ),
        (
            "RCN",
            [
                "-",
                "-",
                "sta/2",
                "sta/3",
                "4",
                "5",
                "irc,scr/6",
                "scr/6x",
                "irc,scr/8",
                "tld,scr/6x",
            ],
        ),
        (
            "RTR",
            [
                "-",
                "-",
                "sta/2",
                "sta/3",
                "sta/4",
                "sta/5",
                "sta/6",
                "sta/6",
                "sta/6",
                "tld,zrc,sta/5",
            ],
        ),
        (
            "RTA",
            [
                "-",
                "-",
                "2",
                "3",
                "tlf/2",
                "tlf/3",
                "6",
                "6",
                "8",
                "tld,scr/6",
            ],
        ),
        (
            "RUC",
            [
                "-", "-", "scj/2", "scj/3", "scj/4", "scj/5", "scj/6", "scj/7", "scj/8", "scj/9",
            ],
        ),
        ("RXJ+", ["-", "-", "2", "3", "4", "5", "6", "6", "8", "9"]),
        (
            "RXJ-",
            [
                "-",
                "-",
                "tlf/2",
                "tlf/3",
                "tlf/2",
                "tlf/3",
                "tlf/3",
                "tlf/3",
                "tlf/3",
                "tld,irc,str/5",
            ],
        ),
        (
            "RXR",
            ["-", "-", "2", "3", "4", "5", "6", "7", "8", "ser/9"],
        ),
    ];

    fn parse_cell(cell: &str) -> Option<(State, Vec<Action>)> {
        if cell == "-" {
            return None;
        }
        let (actions, state) = cell.rsplit_once('/').unwrap_or(("", cell));
        let digit = state.trim_end_matches(['r', 'p', 'x']);
        let state = State::ALL[digit.parse::<usize>().unwrap()];
        let actions = actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| match a {
                "tlu" => Action::Tlu,
                "tld" => Action::Tld,
                "tls" => Action::Tls,
                "tlf" => Action::Tlf,
                "irc" => Action::Irc,
                "zrc" => Action::Zrc,
                "scr" => Action::Scr,
                "sca" => Action::Sca,
                "scn" => Action::Scn,
                "str" => Action::Str,
                "sta" => Action::Sta,
                "scj" => Action::Scj,
                "ser" => Action::Ser,
                other => panic!("unknown action {other}"),
            })
            .collect();
        Some((state, actions))
    }

    #[test]
    fn transition_matches_rfc1661_table_cell_by_cell() {
        let mut cells = 0;
        for (row, (event, (name, cols))) in RfcEvent::ALL.iter().zip(RFC_TABLE.iter()).enumerate() {
            for (col, (state, cell)) in State::ALL.iter().zip(cols.iter()).enumerate() {
                let expected = parse_cell(cell);
                let got = transition(*state, *event).map(|(s, a)| (s, a.to_vec()));
                assert_eq!(
                    got, expected,
                    "row {row} {name} ({event:?}), column {col} {state:?}"
                );
                cells += 1;
            }
        }
        assert_eq!(cells, 160);
    }

    #[test]
    fn rcr_plus_and_minus_share_the_actions_before_the_answer() {
        for state in State::ALL {
            let plus = transition(state, RfcEvent::RcrPlus);
            let minus = transition(state, RfcEvent::RcrMinus);
            let (Some((_, plus)), Some((_, minus))) = (plus, minus) else {
                continue;
            };
            let split = plus
                .iter()
                .position(|a| matches!(a, Action::Sca | Action::Scn));
            if let Some(split) = split {
                assert_eq!(plus[..split], minus[..split], "{state:?}");
            }
        }
    }
}
