//! The authentication methods: LCP's Authentication-Protocol values, shared with `ppp-lcp` so
//! that what LCP negotiates is exactly what the machines here run.

pub use ppp_lcp::lcp::{AuthProtocol, CHAP_MD5, CHAP_MICROSOFT_V1, CHAP_MICROSOFT_V2};

#[cfg(test)]
mod tests {
    use super::*;
    use ppp_frame::Protocol;

    #[test]
    fn option_data_table() {
        let table: &[(AuthProtocol, &[u8])] = &[
            (AuthProtocol::Pap, &[0xc0, 0x23]),
            (AuthProtocol::ChapMd5, &[0xc2, 0x23, 5]),
            (AuthProtocol::MsChapV1, &[0xc2, 0x23, 0x80]),
            (AuthProtocol::MsChapV2, &[0xc2, 0x23, 0x81]),
        ];
        for (method, data) in table {
            assert_eq!(method.option_data(), *data, "{method:?}");
            assert_eq!(AuthProtocol::from_option_data(data), Some(*method));
        }
        assert_eq!(AuthProtocol::from_option_data(&[0xc0]), None);
        assert_eq!(AuthProtocol::from_option_data(&[0xc2, 0x23, 6]), None);
        assert_eq!(AuthProtocol::from_option_data(&[0xc2, 0x27]), None);
        assert_eq!(AuthProtocol::MsChapV2.protocol(), Protocol::Chap);
        assert_eq!(
            AuthProtocol::MsChapV2.chap_algorithm(),
            Some(CHAP_MICROSOFT_V2)
        );
    }
}
