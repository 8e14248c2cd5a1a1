//! The kernel data path: where the kernel has PPP (`ppp_generic`, `pppoe`, `ppp_async`), the
//! datagrams of a link never reach user space. The kernel frames, encapsulates, compresses and
//! encrypts them and forwards them through a `pppN` interface, as it does for pppd and
//! accel-ppp; LCP, authentication, the NCPs and CCP still run in this stack's sans-IO cores,
//! whose frames cross the descriptors of `/dev/ppp`.
//!
//! - [`PppUnit`]: a unit (`PPPIOCNEWUNIT`), the `pppN` interface; [`PppChannel`]: a channel
//!   attached through `/dev/ppp` (`PPPIOCATTCHAN`) and connected to a unit
//!   (`PPPIOCCONNECT`).
//! - [`PppoeSocket`]: an `AF_PPPOX`/`PX_PROTO_OE` socket connected to a PPPoE session (client
//!   and access concentrator alike); [`PppLineDiscipline`]: a tty switched to `N_PPP`, the
//!   kernel's async HDLC.
//! - [`UnitSync`] (sans-IO): what the kernel must be told as the link negotiates: MRU, async
//!   framing, CCP flags and MPPE/Deflate compressors (`PPPIOCSCOMPRESS`), network protocol
//!   modes (`PPPIOCSNPMODE`); [`KernelLink`] carries it out around a channel and a unit.
//! - [`pppoe`]: the PPPoE client and access concentrator on this data path.
//! - [`serial`]: a call on a serial line in the PPP line discipline (dial-out client and
//!   server).
//! - [`choose`]: which data path a program runs ([`DataPlane`]: `--data-plane auto|kernel|tun`)
//!   from what the running kernel offers ([`KernelSupport::probe`]).
//!
//! Every `unsafe` block of this path is in one private module, each with its `SAFETY`
//! argument. docs/data-plane.md explains which path runs when and why.
//!
//! ```
//! use ppp_tokio::kernel::{choose, decide, DataPlane, KernelSupport, Lower, Needs};
//!
//! // `--data-plane tun` never looks at the kernel.
//! let choice = choose(DataPlane::Tun, Lower::Pppoe, &Needs::default())?;
//! assert!(choice.support().is_none());
//! // `auto` on a kernel without `/dev/ppp` (what `KernelSupport::probe` found): TUN, and why.
//! let mut found = KernelSupport::default();
//! found.units = Some("no PPP units: /dev/ppp: No such file or directory".into());
//! let choice = decide(DataPlane::Auto, found, &Needs::default())?;
//! assert_eq!(choice.support(), None);
//! println!("{}", choice.reason());
//! # Ok::<(), ppp_tokio::kernel::ChoiceError>(())
//! ```

mod device;
mod link;
pub mod pppoe;
pub mod serial;
pub mod sync;
mod sys;

pub use device::{Idle, PPP_DEVICE, PppChannel, PppLineDiscipline, PppUnit, PppoeSocket};
pub use link::{KernelInput, KernelLink, KernelReader};
pub use sync::{AsyncSettings, KernelOp, NpMode, Route, UnitSync};

use std::fmt;
use std::str::FromStr;

use ppp_ccp::{CcpConfig, Encryption};
use ppp_link::LinkConfig;
use tracing::{info, warn};

/// Which data path carries the datagrams (`--data-plane`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DataPlane {
    /// The kernel's when it has PPP (and the protocol's modules), otherwise TUN.
    #[default]
    Auto,
    /// The kernel's; an error where it has no PPP.
    Kernel,
    /// A TUN device per link, datagrams through this process.
    Tun,
}

impl FromStr for DataPlane {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(DataPlane::Auto),
            "kernel" => Ok(DataPlane::Kernel),
            "tun" => Ok(DataPlane::Tun),
            other => Err(format!("{other:?}: expected auto, kernel or tun")),
        }
    }
}

impl fmt::Display for DataPlane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataPlane::Auto => "auto",
            DataPlane::Kernel => "kernel",
            DataPlane::Tun => "tun",
        })
    }
}

/// The lower layer a program runs PPP over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lower {
    /// PPPoE sessions (needs the `pppoe` module).
    Pppoe,
    /// Serial lines (needs `ppp_async`, the `N_PPP` line discipline).
    Serial,
}

/// What the running kernel offers the PPP data path, found by trying it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KernelSupport {
    /// Why units cannot be created (`/dev/ppp` missing, no `CAP_NET_ADMIN`); `None`: they
    /// can.
    pub units: Option<String>,
    /// Why the lower layer cannot run in the kernel (no `pppoe` or `ppp_async`); `None`: it
    /// can.
    pub lower: Option<String>,
    /// MPPE in the kernel (`ppp_mppe`).
    pub mppe: bool,
    /// Deflate in the kernel (`ppp_deflate`).
    pub deflate: bool,
}

/// The option `PPPIOCSCOMPRESS` is tried with for MPPE: 128-bit stateless, a zero key.
const MPPE_PROBE: [u8; 22] = [
    18, 6, 0x01, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];
/// The option tried for Deflate: window 15, method 8, sequence check 0.
const DEFLATE_PROBE: [u8; 4] = [26, 4, 0x78, 0];

impl KernelSupport {
    /// Tries what the data path needs for `lower`: a unit (created and removed again: a
    /// `pppN` interface exists for a moment), the MPPE and Deflate compressors on it, and a
    /// PPPoE socket or the PPP line discipline. The kernel loads missing modules on demand
    /// where it can. Needs a tokio runtime.
    pub fn probe(lower: Lower) -> KernelSupport {
        let mut support = KernelSupport::default();
        match PppUnit::create() {
            Ok(unit) => {
                support.mppe = unit.set_compressor(&MPPE_PROBE, false).is_ok();
                support.deflate = unit.set_compressor(&DEFLATE_PROBE, false).is_ok();
            }
            Err(error) => support.units = Some(format!("no PPP units: {error}")),
        }
        support.lower = match lower {
            Lower::Pppoe => sys::pppoe_socket()
                .err()
                .map(|error| format!("no PPPoE sockets (pppoe module): {error}")),
            Lower::Serial => serial::probe_line_discipline()
                .err()
                .map(|error| format!("no PPP line discipline (ppp_async): {error}")),
        };
        support
    }

    /// Why the kernel cannot carry the data path, if it cannot.
    pub fn unusable(&self) -> Option<&str> {
        self.units.as_deref().or(self.lower.as_deref())
    }

    /// `ccp` as the kernel can run it: MPPE only with `ppp_mppe` (never 56-bit keys, which
    /// Linux lacks), Deflate only with `ppp_deflate`; `None` when nothing is left (CCP is then
    /// not offered). What is dropped is logged.
    pub fn kernel_ccp(&self, ccp: Option<CcpConfig>) -> Option<CcpConfig> {
        let mut ccp = ccp?;
        ccp.mppe_56 = false;
        if ccp.encryption == Encryption::Required && !self.mppe {
            // Never fall back to an unencrypted link: CCP asks for MPPE as configured, and
            // the session ends when the kernel refuses the compressor.
            warn!(
                "kernel data path: encryption is required but the kernel has no ppp_mppe: \
                 the link will fail"
            );
            return Some(ccp);
        }
        if ccp.encryption != Encryption::No && !self.mppe {
            info!("kernel data path: no ppp_mppe in the kernel, MPPE not offered");
            ccp.encryption = Encryption::No;
        }
        if ccp.compression && !self.deflate {
            info!("kernel data path: no ppp_deflate in the kernel, Deflate not offered");
            ccp.compression = false;
        }
        if ccp.encryption == Encryption::No && !ccp.compression {
            info!("kernel data path: CCP not offered");
            return None;
        }
        Some(ccp)
    }

    /// A link configuration for this data path: CCP as [`kernel_ccp`](Self::kernel_ccp)
    /// allows, the 16-bit FCS only (what `ppp_async` computes), no Multilink (the kernel's
    /// bundles are not driven from here).
    pub fn link_config(&self, template: &LinkConfig) -> LinkConfig {
        let mut config = template.clone();
        config.ccp = self.kernel_ccp(config.ccp.take());
        config.lcp.fcs_alternatives = None;
        config.lcp.accept_fcs = ppp_lcp::FcsAlternatives::CCITT16;
        config.lcp.mrru = None;
        config
    }
}

/// What a program needs that may rule the kernel data path out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// A feature only the TUN path has (Multilink, dial-on-demand), named for the log.
    pub tun_only: Option<String>,
    /// Encryption is required (MPPE or no link): the kernel must have `ppp_mppe`.
    pub mppe_required: bool,
}

/// The data path [`choose`] picked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    support: Option<KernelSupport>,
    reason: String,
}

impl Choice {
    /// The kernel's offer when the kernel data path was chosen; `None` for TUN.
    pub fn support(&self) -> Option<&KernelSupport> {
        self.support.as_ref()
    }

    /// Why, in words for the log.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Why the requested data path cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChoiceError {
    /// `--data-plane kernel` where the kernel cannot.
    #[error("--data-plane kernel: {0}")]
    KernelUnavailable(String),
    /// `--data-plane kernel` with a feature only TUN has.
    #[error("--data-plane kernel: {0} needs --data-plane tun")]
    TunOnly(String),
}

/// Picks the data path: `requested` unless it is [`DataPlane::Auto`], which takes the kernel's
/// when [`KernelSupport::probe`] finds it usable for `lower` and `needs` allow it.
///
/// # Errors
///
/// [`DataPlane::Kernel`] where the kernel cannot carry it or `needs` rule it out.
pub fn choose(requested: DataPlane, lower: Lower, needs: &Needs) -> Result<Choice, ChoiceError> {
    if requested == DataPlane::Tun {
        return Ok(Choice {
            support: None,
            reason: "TUN data path (--data-plane tun)".to_owned(),
        });
    }
    if let Some(feature) = &needs.tun_only {
        if requested == DataPlane::Kernel {
            return Err(ChoiceError::TunOnly(feature.clone()));
        }
        return Ok(Choice {
            support: None,
            reason: format!("TUN data path: {feature} needs it"),
        });
    }
    decide(requested, KernelSupport::probe(lower), needs)
}

/// [`choose`] once the kernel was probed: the kernel's data path for [`DataPlane::Kernel`]
/// or [`DataPlane::Auto`] when `support` is usable and `needs` allow it, TUN otherwise (for
/// `Auto`), with the reason for the log.
///
/// # Errors
///
/// [`DataPlane::Kernel`] where `support` is unusable or `needs` rule the kernel out.
pub fn decide(
    requested: DataPlane,
    support: KernelSupport,
    needs: &Needs,
) -> Result<Choice, ChoiceError> {
    if requested == DataPlane::Tun {
        return Ok(Choice {
            support: None,
            reason: "TUN data path (--data-plane tun)".to_owned(),
        });
    }
    if let Some(feature) = &needs.tun_only {
        if requested == DataPlane::Kernel {
            return Err(ChoiceError::TunOnly(feature.clone()));
        }
        return Ok(Choice {
            support: None,
            reason: format!("TUN data path: {feature} needs it"),
        });
    }
    let blocker = support.unusable().map(str::to_owned).or_else(|| {
        (needs.mppe_required && !support.mppe)
            .then(|| "encryption is required and the kernel has no ppp_mppe".to_owned())
    });
    match (blocker, requested) {
        (Some(why), DataPlane::Kernel) => Err(ChoiceError::KernelUnavailable(why)),
        (Some(why), _) => Ok(Choice {
            support: None,
            reason: format!("TUN data path: {why}"),
        }),
        (None, requested) => Ok(Choice {
            reason: format!(
                "kernel data path ({}; MPPE {}, Deflate {})",
                if requested == DataPlane::Kernel {
                    "--data-plane kernel"
                } else {
                    "the kernel has PPP"
                },
                if support.mppe { "yes" } else { "no" },
                if support.deflate { "yes" } else { "no" },
            ),
            support: Some(support),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_plane_names_round_trip() {
        for plane in [DataPlane::Auto, DataPlane::Kernel, DataPlane::Tun] {
            assert_eq!(plane.to_string().parse::<DataPlane>(), Ok(plane));
        }
        assert!("ppp".parse::<DataPlane>().is_err());
    }

    #[test]
    fn tun_is_chosen_without_probing() {
        let choice = choose(DataPlane::Tun, Lower::Pppoe, &Needs::default()).expect("tun");
        assert!(choice.support().is_none());
        let needs = Needs {
            tun_only: Some("Multilink (mrru)".into()),
            mppe_required: false,
        };
        let choice = choose(DataPlane::Auto, Lower::Pppoe, &needs).expect("auto");
        assert_eq!(choice.reason(), "TUN data path: Multilink (mrru) needs it");
        assert_eq!(
            choose(DataPlane::Kernel, Lower::Serial, &needs),
            Err(ChoiceError::TunOnly("Multilink (mrru)".into()))
        );
    }

    fn usable(mppe: bool) -> KernelSupport {
        KernelSupport {
            mppe,
            deflate: true,
            ..KernelSupport::default()
        }
    }

    #[test]
    fn auto_takes_the_kernel_when_it_has_ppp() {
        let choice = decide(DataPlane::Auto, usable(true), &Needs::default()).expect("auto");
        assert_eq!(choice.support(), Some(&usable(true)));
        assert_eq!(
            choice.reason(),
            "kernel data path (the kernel has PPP; MPPE yes, Deflate yes)"
        );
        let choice = decide(DataPlane::Kernel, usable(false), &Needs::default()).expect("kernel");
        assert_eq!(
            choice.reason(),
            "kernel data path (--data-plane kernel; MPPE no, Deflate yes)"
        );
    }

    #[test]
    fn auto_falls_back_to_tun_and_says_why() {
        let no_dev = KernelSupport {
            units: Some("no PPP units: /dev/ppp: No such file or directory".into()),
            ..KernelSupport::default()
        };
        let choice = decide(DataPlane::Auto, no_dev.clone(), &Needs::default()).expect("auto");
        assert_eq!(choice.support(), None);
        assert_eq!(
            choice.reason(),
            "TUN data path: no PPP units: /dev/ppp: No such file or directory"
        );
        assert_eq!(
            decide(DataPlane::Kernel, no_dev, &Needs::default()),
            Err(ChoiceError::KernelUnavailable(
                "no PPP units: /dev/ppp: No such file or directory".into()
            ))
        );
        let no_pppoe = KernelSupport {
            lower: Some("no PPPoE sockets (pppoe module): Address family not supported".into()),
            ..usable(true)
        };
        let choice = decide(DataPlane::Auto, no_pppoe, &Needs::default()).expect("auto");
        assert!(
            choice
                .reason()
                .starts_with("TUN data path: no PPPoE sockets")
        );
        // Required encryption without the kernel's MPPE.
        let needs = Needs {
            tun_only: None,
            mppe_required: true,
        };
        let choice = decide(DataPlane::Auto, usable(false), &needs).expect("auto");
        assert_eq!(
            choice.reason(),
            "TUN data path: encryption is required and the kernel has no ppp_mppe"
        );
        assert!(
            decide(DataPlane::Auto, usable(true), &needs)
                .expect("auto")
                .support()
                .is_some()
        );
    }

    #[tokio::test]
    async fn probing_this_host_never_fails() {
        // Whatever the host has, probing answers (on a host without /dev/ppp: TUN).
        let support = KernelSupport::probe(Lower::Pppoe);
        if !std::path::Path::new(PPP_DEVICE).exists() {
            assert!(support.unusable().is_some());
        }
    }

    #[test]
    fn ccp_follows_the_kernel_modules() {
        let none = KernelSupport::default();
        // Required encryption is never dropped: the link fails instead.
        assert_eq!(
            none.kernel_ccp(Some(CcpConfig::require_mppe_128())),
            Some(CcpConfig::require_mppe_128())
        );
        let mut optional = CcpConfig::require_mppe_128();
        optional.encryption = Encryption::Yes;
        assert_eq!(none.kernel_ccp(Some(optional)), None);
        assert_eq!(none.kernel_ccp(None), None);
        let mppe_only = KernelSupport {
            mppe: true,
            ..KernelSupport::default()
        };
        let mut wanted = CcpConfig::require_mppe_128();
        wanted.mppe_56 = true;
        wanted.compression = true;
        let ccp = mppe_only.kernel_ccp(Some(wanted)).expect("MPPE stays");
        assert!(!ccp.mppe_56 && !ccp.compression);
        assert_eq!(ccp.encryption, Encryption::Required);
        let deflate_only = KernelSupport {
            deflate: true,
            ..KernelSupport::default()
        };
        assert_eq!(
            deflate_only.kernel_ccp(Some(CcpConfig::deflate(12))),
            Some(CcpConfig::deflate(12))
        );
        let mut template = LinkConfig::default();
        template.lcp.mrru = Some(1600);
        template.lcp.fcs_alternatives = Some(ppp_lcp::FcsAlternatives::CCITT32);
        let config = deflate_only.link_config(&template);
        assert_eq!(config.lcp.mrru, None);
        assert_eq!(config.lcp.fcs_alternatives, None);
    }
}
