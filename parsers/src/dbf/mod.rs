//! dBase/FoxPro table reading and the WinTariff call mapping. Being written.
