package conform

// checks is the table of checks, in the order they run: read-only ones
// first, so that a destructive run reports on the card as it was found.
func checks() []check {
	return []check{
		{id: "discovery.piv-refused", section: "1.4", title: "SELECT of the PIV AID is refused (else Windows takes the card for a PIV card)", run: checkPIVRefused},
		{id: "discovery.opensc-probes", section: "1.2", title: "the probes of OpenSC drivers tried before GIDS are refused and leave the application usable", run: checkProbes},
		{id: "discovery.select-le", section: "1.1", title: "SELECT GIDS AID with Le (OpenSC's detection) answers the FCI with the GIDS AID and 9000", run: checkSelectLe},
		{id: "discovery.select-no-le", section: "2.1", title: "SELECT GIDS AID without Le answers the FCI with 9000 directly, not 61xx", run: checkSelectNoLe},
		{id: "discovery.select-variants", section: "1.5", title: "SELECT variants: AID with P2=0C, full 11-byte AID, application FID 3FFF", run: checkSelectVariants},
		{id: "discovery.implicit-select", section: "1.4", title: "after a reset the application is selected without SELECT by AID (Windows selects 3FFF first)", run: checkImplicitSelect},
		{id: "discovery.ef-atr", section: "2.3", title: "EF.ATR (GET DATA 2F01) is refused or well-formed", run: checkEFATR},
		{id: "discovery.master-file", section: "1.5", title: "SELECT of the master file and path selections (PKCS#15 probes) never answer 9000 with a file system OpenSC would parse", run: checkMasterFileProbes},
		{id: "fs.masterfile", section: "3.3", title: "masterfile A000/DF1F: version 01, 28-byte records, the initial entries", run: checkMasterfile},
		{id: "fs.cardid", section: "3.4", title: "cardid A012/DF20: 16 bytes, readable by everyone", run: checkCardID},
		{id: "fs.cardcf", section: "3.5", title: "cardcf A010/DF22: exactly 6 bytes (OpenSC reads it into a 6-byte buffer)", run: checkCardCF},
		{id: "fs.cardapps", section: "3.2", title: "cardapps A010/DF21 lists mscp", run: checkCardApps},
		{id: "fs.cmapfile", section: "3.6", title: "cmapfile A010/DF23: whole 86-byte records", run: checkCmapfile},
		{id: "fs.keymap", section: "3.6", title: "keymap A000/DF20: absent, empty, or version 01 with one 12-byte record per cmapfile record", run: checkKeymap},
		{id: "pin.status", section: "2.5", title: "PIN status DO 7F71 gives tries left (97) and limit (93)", run: checkPINStatus},
		{id: "pin.verify", section: "2.5", title: "VERIFY with the PIN answers 9000 and keeps the counter; logout answers 9000", needsPIN: true, run: checkPINVerify},
		{id: "acl.write-without-auth", section: "4.2", title: "PUT DATA to cardcf without authentication is refused (6982)", run: checkWriteWithoutAuth},
		{id: "admin.mutual", section: "2.9", title: "admin mutual authentication: the card proves the key, a replayed response is refused (6985), a wrong one too (6982)", needAdmin: true, run: checkAdminMutual},
		{id: "admin.external", section: "2.9", title: "admin external authentication: 8-byte challenge, correct response 9000, replay refused", needAdmin: true, run: checkAdminExternal},
		{id: "pin.wrong-and-reset", section: "2.5", title: "a wrong PIN answers 63Cx with the decremented count; the right one restores the counter", writes: true, needsPIN: true, run: checkPINWrong},
		{id: "pin.lock-unblock", section: "2.7", title: "the PIN blocks after its tries (6983, also for the right PIN); admin RESET RETRY COUNTER unblocks it", writes: true, needsPIN: true, needAdmin: true, run: checkPINLockUnblock},
		{id: "fs.cardcf-write", section: "3.5", title: "a cardcf written with the PIN reads back as written (hosts' caches depend on it)", writes: true, needsPIN: true, run: checkCardCFWrite},
		{id: "transport.chaining", section: "2.1", title: "PUT DATA with command chaining in 240-byte (Windows) and 255-byte (OpenSC) chunks; responses over 256 bytes by 61xx/GET RESPONSE", writes: true, needsPIN: true, run: checkChaining},
		{id: "acl.create-delete", section: "2.13", title: "CREATE FILE and DELETE FILE need the PIN; without it both are refused (6982)", writes: true, needsPIN: true, run: checkCreateDelete},
		{id: "acl.pin-cannot-delete-system", section: "4.2", title: "a PIN holder cannot delete an EF it may not write (A014, admin-only)", writes: true, needsPIN: true, run: checkPINCannotDeleteSystem},
		{id: "acl.own-key-not-admin", section: "4.3", title: "a 3DES key the PIN holder loads into a key EF of their own does not grant admin rights", writes: true, needsPIN: true, run: checkOwnKeyNotAdmin},
		{id: "keys.generate-1024", section: "2.10", title: "GENERATE RSA 1024 (OpenSC form, no Le) and read the public key without PIN", writes: true, needsPIN: true, run: generate(1024)},
		{id: "keys.generate-2048", section: "2.10", title: "GENERATE RSA 2048 (Windows form, with Le: public key in the answer) and read it without PIN", writes: true, needsPIN: true, run: generate(2048)},
		{id: "keys.generate-3072", section: "2.10", title: "GENERATE RSA 3072 and read the public key", writes: true, needsPIN: true, run: generate(3072)},
		{id: "keys.generate-4096", section: "2.10", title: "GENERATE RSA 4096 and read the public key (526 bytes, two GET RESPONSEs)", writes: true, needsPIN: true, run: generate(4096)},
		{id: "crypto.sign-pkcs1", section: "2.11", title: "sign with PKCS#1 v1.5 padding by the card (alg 5x) with every generated key; signatures verify", writes: true, needsPIN: true, run: checkSignPKCS1},
		{id: "crypto.sign-raw", section: "2.11", title: "sign raw (alg 1x, host pads) a full block with 240-byte chaining", writes: true, needsPIN: true, run: checkSignRaw},
		{id: "crypto.decipher-pkcs1", section: "2.11", title: "decipher PKCS#1 v1.5 (alg 4x) with every generated key, chained in 255-byte chunks", writes: true, needsPIN: true, run: checkDecipherPKCS1},
		{id: "crypto.decipher-oaep", section: "2.11", title: "decipher OAEP (alg 8x, SHA-1) with 240-byte chunks", writes: true, needsPIN: true, run: checkDecipherOAEP},
		{id: "crypto.decipher-raw", section: "2.11", title: "decipher raw (alg 0x)", writes: true, needsPIN: true, run: checkDecipherRaw},
		{id: "crypto.needs-pin", section: "4.2", title: "MSE for a user key without the PIN is refused (6982)", writes: true, needsPIN: true, run: checkCryptoNeedsPIN},
		{id: "persist.power-cycle", section: "4.1", title: "after a power cycle: data and keys persist, authentication does not", writes: true, needsPIN: true, run: checkPowerCycle},
	}
}

var cleanupCheck = check{id: "cleanup", section: "2.13", title: "delete what the destructive checks created", writes: true, run: cleanup}
