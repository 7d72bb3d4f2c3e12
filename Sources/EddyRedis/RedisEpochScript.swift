/// The Lua script behind `RedisEpochWriter.write`: a fenced, all-or-nothing epoch write.
///
/// Why one script: Redis runs a script to its end with no other command in between, so an epoch appears
/// at once; the fence (marker check) and the writes cannot be separated by another writer. The script
/// reads and checks everything first and writes last, with commands that cannot fail once it is running
/// (`MSET`, `SET`: any key type is overwritten, and a running script is never stopped for memory), so a
/// stale or refused epoch writes nothing. Redis does not roll a script back: that ordering is what makes
/// it all-or-nothing.
///
/// Out of memory (`maxmemory` with `noeviction`), checked on Redis 7.0.15: the `#!lua` form is flagged as
/// a writing script and refused up front with `OOM` while memory is over the limit; it never starts, so it
/// writes nothing, and once started it always completes. The legacy form (no shebang, for Redis < 7,
/// which cannot parse `#!`) is refused at its first write with `OOM`, and as it checks memory only at that
/// first write, it too either writes everything or nothing. Both forms are covered by the tests.
///
/// Layout: KEYS[1] = marker, KEYS[2...] = data keys; ARGV[1] = epoch, ARGV[2] = minimum marker,
/// ARGV[i + 1] = value of KEYS[i]. Epochs travel as canonical decimal strings and are compared as such:
/// exact for every 64-bit value, which Lua's doubles are not.
///
/// Speed: `MSET` in batches of 2 500 pairs (`unpack` stops at about 8 000 values) runs about 1.7 times as
/// fast inside Redis as one `SET` per key.
enum RedisEpochScript {
    enum Form: Sendable {
        /// `#!lua`: Redis 7 and newer; refused as a whole under OOM.
        case flagged
        /// No shebang: Redis 6; refused at its first write under OOM.
        case legacy
    }

    static func source(_ form: Form) -> String {
        switch form {
        case .flagged: "#!lua\n" + body
        case .legacy: body
        }
    }

    /// Error replies the script returns start with this word (the marker holds something else).
    static let markerErrorPrefix = "EDDYMARKER"

    private static let body = """
        -- Eddy: fenced epoch write (see RedisEpochScript.swift).
        local function below(a, b)
          if #a ~= #b then return #a < #b end
          for i = 1, #a do
            local x, y = string.byte(a, i), string.byte(b, i)
            if x ~= y then return x < y end
          end
          return false
        end
        local kind = redis.call('TYPE', KEYS[1])['ok']
        if kind ~= 'none' and kind ~= 'string' then
          return redis.error_reply('EDDYMARKER holds a ' .. kind .. ', not an epoch number')
        end
        local stored = redis.call('GET', KEYS[1])
        local marker = '0'
        if stored then
          marker = string.match(stored, '^0*(%d+)$')
          if not marker then
            local shown = string.gsub(string.sub(stored, 1, 32), '[^%w%-_.:]', '?')
            return redis.error_reply('EDDYMARKER holds "' .. shown .. '", not an epoch number')
          end
        end
        if not below(marker, ARGV[1]) then return {'stale', marker} end
        if below(marker, ARGV[2]) then
          if stored then return {'behind', marker} end
          return {'behind'}
        end
        -- Nothing was written above this line; nothing below can fail.
        local batch = {}
        local last = #KEYS
        local first = 2
        while first <= last do
          local stop = math.min(first + 2499, last)
          local n = 0
          for i = first, stop do
            batch[n + 1] = KEYS[i]
            batch[n + 2] = ARGV[i + 1]
            n = n + 2
          end
          redis.call('MSET', unpack(batch, 1, n))
          first = stop + 1
        end
        redis.call('SET', KEYS[1], ARGV[1])
        return {'applied'}
        """
}
