#include "dcp_reply.h"

#include <string.h>

#include "dcp_sb.h"

#define DCP_FIELD_MAX 16u

static void put_node(dcp_sb_t *sb, uint8_t node)
{
    dcp_sb_puts(sb, "NODE");
    dcp_sb_put_u32(sb, node);
}

uint64_t dcp_power_dmw(int32_t voltage_mv, int32_t current_cma)
{
    int64_t product = (int64_t)voltage_mv * (int64_t)current_cma; /* 1e-5 mW */
    uint64_t mag = (product < 0) ? (uint64_t)0 - (uint64_t)product : (uint64_t)product;
    return (mag + 5000u) / 10000u;
}

static void put_reading(dcp_sb_t *sb, uint8_t duty, int32_t voltage_mv, int32_t current_cma)
{
    dcp_sb_puts(sb, "D:");
    dcp_sb_put_u32(sb, duty);
    dcp_sb_puts(sb, "%,V:");
    dcp_sb_put_fixed(sb, voltage_mv, 3);
    dcp_sb_puts(sb, "V,I:");
    dcp_sb_put_fixed(sb, current_cma, 2);
    dcp_sb_puts(sb, "mA,P:");
    dcp_sb_put_fixed(sb, (int64_t)dcp_power_dmw(voltage_mv, current_cma), 1);
    dcp_sb_puts(sb, "mW");
}

int dcp_fmt_reading(char *buf, size_t size, uint8_t duty, int32_t voltage_mv, int32_t current_cma)
{
    dcp_sb_t sb;
    dcp_sb_init(&sb, buf, size);
    if (duty > 100u || voltage_mv < 0) {
        return -1;
    }
    put_reading(&sb, duty, voltage_mv, current_cma);
    return dcp_sb_result(&sb);
}

int dcp_fmt_data(char *buf, size_t size, uint8_t node, uint8_t duty, int32_t voltage_mv,
                 int32_t current_cma)
{
    dcp_sb_t sb;
    dcp_sb_init(&sb, buf, size);
    if (node >= DCP_MAX_NODES || duty > 100u || voltage_mv < 0) {
        return -1;
    }
    put_node(&sb, node);
    dcp_sb_puts(&sb, ":DATA:");
    put_reading(&sb, duty, voltage_mv, current_cma);
    return dcp_sb_result(&sb);
}

int dcp_fmt_status(char *buf, size_t size, uint16_t src, const uint8_t *text, size_t len)
{
    dcp_sb_t sb;
    dcp_sb_init(&sb, buf, size);
    if (text == NULL && len > 0) {
        return -1;
    }
    if (len < 4 || memcmp(text, "NODE", 4) != 0) {
        dcp_sb_puts(&sb, "NODE");
        dcp_sb_put_u32(&sb, (src >= DCP_BASE_UNICAST) ? (uint32_t)(src - DCP_BASE_UNICAST) : 0u);
        dcp_sb_puts(&sb, ":DATA:");
    }
    if (len > 0) {
        dcp_sb_put_echo(&sb, text, len, false);
    }
    return dcp_sb_result(&sb);
}

static bool valid_hardware(const char *hw)
{
    size_t n = 0;
    for (; hw[n] != '\0'; n++) {
        char c = hw[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-';
        if (!ok || n >= DCP_FIELD_MAX) {
            return false;
        }
    }
    return n > 0;
}

static bool valid_firmware(const char *fw)
{
    unsigned parts = 0;
    size_t digits = 0;
    size_t n = 0;
    for (; fw[n] != '\0'; n++) {
        if (n >= DCP_FIELD_MAX) {
            return false;
        }
        if (fw[n] >= '0' && fw[n] <= '9') {
            digits++;
        } else if (fw[n] == '.' && digits > 0 && parts < 2) {
            parts++;
            digits = 0;
        } else {
            return false;
        }
    }
    return parts == 2 && digits > 0;
}

int dcp_fmt_info(char *buf, size_t size, uint8_t node, const dcp_info_t *info)
{
    dcp_sb_t sb;
    dcp_sb_init(&sb, buf, size);
    if (node >= DCP_MAX_NODES || info == NULL || info->firmware == NULL ||
        info->hardware == NULL || !valid_firmware(info->firmware) ||
        !valid_hardware(info->hardware) ||
        (info->role != DCP_ROLE_CHAR_UNIVERSAL && info->role != DCP_ROLE_CHAR_RELAY)) {
        return -1;
    }
    put_node(&sb, node);
    dcp_sb_puts(&sb, ":INFO:FW:");
    dcp_sb_puts(&sb, info->firmware);
    dcp_sb_puts(&sb, ",HW:");
    dcp_sb_puts(&sb, info->hardware);
    dcp_sb_puts(&sb, ",ROLE:");
    dcp_sb_putc(&sb, info->role);
    dcp_sb_puts(&sb, ",CAP:");
    dcp_sb_put_hex(&sb, info->capabilities, 4);
    dcp_sb_puts(&sb, ",UP:");
    dcp_sb_put_u32(&sb, info->uptime_s);
    dcp_sb_puts(&sb, ",HEAP:");
    dcp_sb_put_u32(&sb, info->free_heap);
    dcp_sb_puts(&sb, ",MESH:");
    dcp_sb_put_hex(&sb, info->mesh_id, 8);
    dcp_sb_puts(&sb, info->gateway ? ",GW:1" : ",GW:0");
    return dcp_sb_result(&sb);
}

int dcp_fmt_sent(char *buf, size_t size, dcp_cmd_t cmd, uint8_t duty)
{
    dcp_sb_t sb;
    dcp_sb_init(&sb, buf, size);
    const char *name = dcp_cmd_name(cmd);
    if (name == NULL || duty > 100u) {
        return -1;
    }
    dcp_sb_puts(&sb, "SENT:");
    dcp_sb_puts(&sb, name);
    if (cmd == DCP_CMD_DUTY) {
        dcp_sb_putc(&sb, ':');
        dcp_sb_put_u32(&sb, duty);
    }
    return dcp_sb_result(&sb);
}

int dcp_fmt_error(char *buf, size_t size, const char *kind, const uint8_t *detail,
                  size_t detail_len)
{
    dcp_sb_t sb;
    dcp_sb_init(&sb, buf, size);
    if (kind == NULL || kind[0] == '\0') {
        return -1;
    }
    dcp_sb_puts(&sb, "ERROR:");
    dcp_sb_puts(&sb, kind);
    if (detail != NULL) {
        dcp_sb_putc(&sb, ':');
        dcp_sb_put_echo(&sb, detail, detail_len, true);
    }
    return dcp_sb_result(&sb);
}

int dcp_fmt_timeout(char *buf, size_t size, uint16_t addr)
{
    dcp_sb_t sb;
    dcp_sb_init(&sb, buf, size);
    dcp_sb_puts(&sb, "TIMEOUT:0x");
    dcp_sb_put_hex(&sb, addr, 4);
    return dcp_sb_result(&sb);
}

int dcp_fmt_err_unknown(char *buf, size_t size, const uint8_t *payload, size_t len)
{
    dcp_sb_t sb;
    dcp_sb_init(&sb, buf, size);
    if (payload == NULL && len > 0) {
        return -1;
    }
    dcp_sb_puts(&sb, "ERR:UNKNOWN:");
    if (len > 0) {
        dcp_sb_put_echo(&sb, payload, len, false);
    }
    return dcp_sb_result(&sb);
}
