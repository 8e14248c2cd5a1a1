//! LCP/IPCP/IPv6CP/CCP packets and option lists: parse, emit and describe never panic, and
//! what parses emits back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp_ccp::option::parse_options as parse_ccp_options;
use ppp_ipcp::{IpcpOption, Ipv6cpOption};
use ppp_lcp::lcp::describe_lcp_options;
use ppp_lcp::{ControlPacket, describe_packet, iter_options, validate_options};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = ControlPacket::parse(data) {
        let bytes = packet.to_vec();
        // Bytes past the Length field are padding: emit gives back exactly the packet.
        assert_eq!(&bytes[..], &data[..bytes.len()]);
        assert_eq!(
            ControlPacket::parse(&bytes).map(|p| p.to_vec()),
            Ok(bytes.clone())
        );
    }
    let _ = describe_packet("LCP", data, &|o| describe_lcp_options(o));
    let _ = describe_packet("CCP", data, &|o| ppp_ccp::describe_ccp_options(o));
    let well_formed = validate_options(data).is_ok();
    assert_eq!(well_formed, iter_options(data).all(|o| o.is_ok()));
    if let Ok(options) = IpcpOption::parse_list(data) {
        let mut out = Vec::new();
        IpcpOption::emit_list(&options, &mut out);
        assert_eq!(out, data);
    }
    if let Ok(options) = Ipv6cpOption::parse_list(data) {
        let mut out = Vec::new();
        Ipv6cpOption::emit_list(&options, &mut out);
        assert_eq!(out, data);
    }
    let _ = parse_ccp_options(data);
    let _ = ppp_ipcp::describe_ipcp_options(data);
    let _ = ppp_ipcp::describe_ipv6cp_options(data);
});
