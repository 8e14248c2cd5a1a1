//! The host side of a running link: a TUN device carrying the datagrams, its addresses and
//! MTU, the default route (`default-route-distance` as metric) and the peer's DNS servers in a
//! `resolv.conf` the user named. Needs `CAP_NET_ADMIN`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;

use ppp_link::Datagram;
use ppp_tokio::netconfig::{self, IpFamily};
use ppp_tokio::tun::TunDevice;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// The placeholder addresses of a dial-on-demand interface before the first call (pppd uses
/// `10.64.64.64` for the peer the same way).
pub const DEMAND_LOCAL: Ipv4Addr = Ipv4Addr::new(10, 112, 112, 112);
/// See [`DEMAND_LOCAL`].
pub const DEMAND_PEER: Ipv4Addr = Ipv4Addr::new(10, 64, 64, 64);

/// A TUN interface wired to a link's packet channels.
#[derive(Debug)]
pub struct TunLink {
    name: String,
    addresses: Option<(Ipv4Addr, Ipv4Addr)>,
    ipv6: Option<(Ipv6Addr, Ipv6Addr)>,
    default_route: Option<u32>,
    resolv_conf: Option<PathBuf>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl TunLink {
    /// Creates the TUN device (`name` or the kernel's choice), brings it up, and starts copying
    /// packets: what the kernel routes into it goes to the returned receiver (the client's
    /// `outbound`), and datagrams sent to the returned sender go to the kernel.
    ///
    /// # Errors
    ///
    /// Creating or configuring the device.
    pub fn create(
        name: Option<&str>,
        mtu: u16,
    ) -> std::io::Result<(TunLink, mpsc::Receiver<Vec<u8>>, mpsc::Sender<Datagram>)> {
        let device = Arc::new(TunDevice::create(name)?);
        let name = device.name().to_owned();
        netconfig::disable_ipv6_address_generation(&name).ok();
        netconfig::set_mtu(&name, u32::from(mtu))?;
        netconfig::set_up(&name)?;
        let (outbound_tx, outbound_rx) = mpsc::channel(256);
        let (inbound_tx, mut inbound_rx) = mpsc::channel::<Datagram>(256);
        let reader = {
            let device = Arc::clone(&device);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                loop {
                    match device.recv(&mut buf).await {
                        Ok(n) if n > 0 && matches!(buf[0] >> 4, 4 | 6) => {
                            if outbound_tx.send(buf[..n].to_vec()).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(error) => {
                            warn!("TUN read: {error}");
                            return;
                        }
                    }
                }
            })
        };
        let writer = tokio::spawn(async move {
            while let Some(datagram) = inbound_rx.recv().await {
                let packet = match &datagram {
                    Datagram::Ipv4(packet) | Datagram::Ipv6(packet) => packet,
                };
                if let Err(error) = device.send(packet).await {
                    debug!("TUN write: {error}");
                }
            }
        });
        Ok((
            TunLink {
                name,
                addresses: None,
                ipv6: None,
                default_route: None,
                resolv_conf: None,
                tasks: vec![reader, writer],
            },
            outbound_rx,
            inbound_tx,
        ))
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the point-to-point addresses (replacing earlier ones) and the MTU.
    ///
    /// # Errors
    ///
    /// `ip` failures.
    pub fn set_addresses(
        &mut self,
        local: Ipv4Addr,
        peer: Ipv4Addr,
        mtu: u16,
    ) -> std::io::Result<()> {
        if self.addresses == Some((local, peer)) {
            return netconfig::set_mtu(&self.name, u32::from(mtu));
        }
        self.clear_addresses();
        netconfig::add_point_to_point_ipv4(&self.name, local, peer)?;
        self.addresses = Some((local, peer));
        netconfig::set_mtu(&self.name, u32::from(mtu))
    }

    /// Sets the MTU.
    ///
    /// # Errors
    ///
    /// `ip` failures.
    pub fn set_mtu(&self, mtu: u16) -> std::io::Result<()> {
        netconfig::set_mtu(&self.name, u32::from(mtu))
    }

    /// Sets IPv6CP's link-local pair (replacing an earlier one).
    ///
    /// # Errors
    ///
    /// `ip` failures.
    pub fn set_ipv6_link_local(&mut self, local: Ipv6Addr, peer: Ipv6Addr) -> std::io::Result<()> {
        if self.ipv6 == Some((local, peer)) {
            return Ok(());
        }
        self.clear_ipv6_link_local();
        netconfig::add_ipv6_link_local(&self.name, local, peer)?;
        self.ipv6 = Some((local, peer));
        Ok(())
    }

    /// Removes what [`set_ipv6_link_local`](Self::set_ipv6_link_local) set.
    pub fn clear_ipv6_link_local(&mut self) {
        if let Some((local, peer)) = self.ipv6.take() {
            netconfig::remove_ipv6_link_local(&self.name, local, peer).ok();
        }
    }

    /// Removes the addresses set.
    pub fn clear_addresses(&mut self) {
        if let Some((local, peer)) = self.addresses.take() {
            netconfig::remove_point_to_point_ipv4(&self.name, local, peer).ok();
        }
    }

    /// Adds the default route through the interface with `metric` (once).
    ///
    /// # Errors
    ///
    /// `ip` failures other than "exists".
    pub fn add_default_route(&mut self, metric: u32) -> std::io::Result<()> {
        if self.default_route.is_some() {
            return Ok(());
        }
        match netconfig::add_default_route(&self.name, IpFamily::V4, metric) {
            Ok(()) => {}
            Err(error) if error.to_string().contains("File exists") => {}
            Err(error) => return Err(error),
        }
        self.default_route = Some(metric);
        Ok(())
    }

    /// Writes the DNS servers to `path` (removed again on drop).
    ///
    /// # Errors
    ///
    /// Writing the file.
    pub fn write_resolv_conf(
        &mut self,
        path: PathBuf,
        servers: &[Ipv4Addr],
    ) -> std::io::Result<()> {
        let servers: Vec<IpAddr> = servers.iter().copied().map(IpAddr::V4).collect();
        netconfig::write_resolv_conf(&path, &servers)?;
        self.resolv_conf = Some(path);
        Ok(())
    }
}

impl Drop for TunLink {
    fn drop(&mut self) {
        if let Some(metric) = self.default_route.take() {
            netconfig::remove_default_route(&self.name, IpFamily::V4, metric).ok();
        }
        if let Some(path) = self.resolv_conf.take() {
            netconfig::remove_resolv_conf(&path).ok();
        }
        self.clear_addresses();
        for task in &self.tasks {
            task.abort();
        }
    }
}
