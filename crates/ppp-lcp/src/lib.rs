//! The RFC 1661 automaton and LCP (work in progress).
