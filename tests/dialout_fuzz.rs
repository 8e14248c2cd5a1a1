//! Bad modem output through the real adapter (`ppp_tokio::serial::ModemPort` on a byte
//! stream): binary noise, an endless line, echo without a final result, a modem that closes
//! the line. Each must end in a clear error after the command timeout, never a hang.

use std::time::{Duration, Instant};

use ppp_modem::{Dialer, DialerConfig, ModemError};
use ppp_tokio::serial::{self, ModemPort, SerialError};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// How the fake modem misbehaves.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Pseudo-random bytes (NULs, CRs, 0x7e, high bytes), 512 bytes every 20 ms.
    Noise,
    /// One line that never ends.
    EndlessLine,
    /// Echoes every command and never says OK.
    EchoOnly,
    /// Says OK to the first command, then closes the line.
    CloseAfterOk,
    /// `CONNECT` split in the middle of the word, then noise: must not crash either.
    TornLines,
}

async fn fake_modem(mut line: DuplexStream, behaviour: Misbehaviour) {
    let mut noise = ppp_sim::SimRng::new(0x1234_5678);
    let mut next = move || noise.next_u32();
    let mut buf = [0u8; 1024];
    loop {
        match behaviour {
            Misbehaviour::Noise => {
                let chunk: Vec<u8> = (0..512).map(|_| next().to_le_bytes()[0]).collect();
                if line.write_all(&chunk).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Misbehaviour::EndlessLine => {
                if line.write_all(&[b'A'; 512]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Misbehaviour::EchoOnly => match line.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if line.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            Misbehaviour::CloseAfterOk => {
                let _ = line.read(&mut buf).await;
                let _ = line.write_all(b"\r\nOK\r\n").await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            Misbehaviour::TornLines => {
                let _ = line.read(&mut buf).await;
                for piece in [&b"\r\nCON"[..], b"N", b"\x00\xff\r\r", b"ECT 96", b"00\r"] {
                    if line.write_all(piece).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let noise: Vec<u8> = (0..2048).map(|_| next().to_le_bytes()[1]).collect();
                let _ = line.write_all(&noise).await;
            }
        }
    }
}

async fn dial_against(
    behaviour: Misbehaviour,
) -> (Result<serial::Connected, SerialError>, Duration) {
    let (host, modem) = tokio::io::duplex(4096);
    tokio::spawn(fake_modem(modem, behaviour));
    let mut config = DialerConfig::cellular(Some("internet"));
    config.command_timeout = Duration::from_millis(800);
    let mut dialer = Dialer::new(config).expect("config");
    dialer.open(serial::now()).expect("open");
    let mut port = ModemPort::new(host, dialer);
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        port.run_until_connected(&mut |_| {}),
    )
    .await
    .unwrap_or_else(|_| panic!("{behaviour:?}: the adapter hung"));
    (result, started.elapsed())
}

#[tokio::test]
async fn binary_noise_times_out_cleanly() {
    let (result, elapsed) = dial_against(Misbehaviour::Noise).await;
    let error = result.expect_err("noise cannot connect");
    assert!(
        matches!(error, SerialError::Modem(ModemError::Timeout { ref command }) if command == "ATZ"),
        "{error:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(
        error.to_string(),
        "modem: no final result for \"ATZ\" within its timeout"
    );
}

#[tokio::test]
async fn an_endless_line_times_out_cleanly() {
    let (result, elapsed) = dial_against(Misbehaviour::EndlessLine).await;
    let error = result.expect_err("an endless line cannot connect");
    assert!(
        matches!(error, SerialError::Modem(ModemError::Timeout { .. })),
        "{error:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn a_missing_final_result_times_out_cleanly() {
    let (result, elapsed) = dial_against(Misbehaviour::EchoOnly).await;
    let error = result.expect_err("echo alone cannot connect");
    assert!(
        matches!(error, SerialError::Modem(ModemError::Timeout { .. })),
        "{error:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn a_closed_line_is_reported() {
    let (result, _) = dial_against(Misbehaviour::CloseAfterOk).await;
    let error = result.expect_err("a closed line cannot connect");
    assert!(matches!(error, SerialError::Closed), "{error:?}");
}

#[tokio::test]
async fn torn_lines_and_noise_never_panic() {
    let (result, _) = dial_against(Misbehaviour::TornLines).await;
    // ATZ gets no OK (the torn CONNECT arrives while ATZ is in flight): a clean failure.
    assert!(result.is_err(), "{result:?}");
}
