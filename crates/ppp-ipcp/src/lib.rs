//! IPCP and IPv6CP (work in progress).
