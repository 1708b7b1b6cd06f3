#pragma once
/// Values that travel in and out of SQL: parameters bound to `?` and the columns of result rows.
/// SQLite has four storage classes that we use: NULL, INTEGER (int64), REAL (double) and TEXT
/// (a byte string). BLOB columns are read as TEXT bytes; bind binary data as a std::string.
///
/// Reading a value as the wrong type (`as<std::int64_t>()` on TEXT, or on NULL without
/// std::optional) is a bug in the caller — the code and the schema disagree — and throws
/// `TypeMismatch`. Use `std::optional<T>` for nullable columns.

#include <concepts>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace plexus::store {

/// SQLite's storage classes as we see them.
enum class ValueType { null, integer, real, text };

/// The name of a value type, for messages: "NULL", "INTEGER", "REAL", "TEXT".
std::string_view to_string(ValueType type) noexcept;

/// A value read as a type it does not hold, or a column name or index that does not exist.
/// A programming error (the code and the schema disagree), hence an exception.
class TypeMismatch : public std::logic_error {
  public:
    using std::logic_error::logic_error;
};

namespace detail {
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
}  // namespace detail

/// One SQL value. Implicitly constructible from the C++ types that map onto SQLite's: integers
/// (and bool, as 0/1), floating point, strings, nullptr / std::nullopt, and std::optional of those
/// (empty means NULL). A regular value type; not synchronised (like std::string).
class Value {
  public:
    using Storage = std::variant<std::monostate, std::int64_t, double, std::string>;

    /// NULL.
    Value() noexcept = default;
    /// NULL.
    Value(std::nullptr_t) noexcept {}
    /// NULL.
    Value(std::nullopt_t) noexcept {}
    /// INTEGER. Throws std::out_of_range for an unsigned value above INT64_MAX.
    template <std::integral I>
    Value(I v) : v_(checked_int64(v)) {}
    /// REAL.
    template <std::floating_point F>
    Value(F v) noexcept : v_(static_cast<double>(v)) {}
    /// TEXT.
    Value(std::string v) noexcept : v_(std::move(v)) {}
    /// TEXT.
    Value(std::string_view v) : v_(std::string(v)) {}
    /// TEXT; a null pointer is NULL.
    Value(const char* v) {
        if (v != nullptr) v_ = std::string(v);
    }
    /// The contained value, or NULL when empty.
    template <class T>
    Value(const std::optional<T>& v) {
        if (v) *this = Value(*v);
    }

    /// Which storage class this value has.
    ValueType type() const noexcept { return static_cast<ValueType>(v_.index()); }
    /// True for NULL.
    bool is_null() const noexcept { return type() == ValueType::null; }

    /// The value as `T`: std::int64_t and other integers (INTEGER, range-checked), bool (INTEGER
    /// non-zero), double or float (REAL or INTEGER), std::string (TEXT), Value (itself), or
    /// std::optional of one of these (NULL gives std::nullopt). Throws TypeMismatch otherwise.
    template <class T>
    T as() const {
        if constexpr (std::is_same_v<T, Value>) {
            return *this;
        } else if constexpr (detail::is_optional<T>::value) {
            if (is_null()) return std::nullopt;
            return as<typename T::value_type>();
        } else if constexpr (std::is_same_v<T, bool>) {
            return expect<std::int64_t>(ValueType::integer) != 0;
        } else if constexpr (std::is_integral_v<T>) {
            auto n = expect<std::int64_t>(ValueType::integer);
            if (!fits<T>(n))
                throw TypeMismatch("INTEGER " + std::to_string(n) + " does not fit the requested type");
            return static_cast<T>(n);
        } else if constexpr (std::is_floating_point_v<T>) {
            if (type() == ValueType::integer) return static_cast<T>(std::get<std::int64_t>(v_));
            return static_cast<T>(expect<double>(ValueType::real));
        } else if constexpr (std::is_same_v<T, std::string>) {
            return expect<std::string>(ValueType::text);
        } else {
            static_assert(sizeof(T) == 0,
                          "Value::as<T>: T must be an integer, floating point, std::string, "
                          "Value or std::optional of one of these");
        }
    }

    /// The underlying variant (index = ValueType).
    const Storage& storage() const noexcept { return v_; }

    /// Same storage class and value (no conversions: 1 != 1.0).
    friend bool operator==(const Value&, const Value&) = default;

  private:
    template <class I>
    static std::int64_t checked_int64(I v) {
        if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
            if (v > static_cast<I>(std::numeric_limits<std::int64_t>::max())) {
                throw std::out_of_range("integer does not fit SQLite's int64");
            }
        }
        return static_cast<std::int64_t>(v);
    }
    template <class T>
    static bool fits(std::int64_t n) noexcept {
        if constexpr (std::is_unsigned_v<T>) {
            return n >= 0 && static_cast<std::uint64_t>(n) <= std::numeric_limits<T>::max();
        } else {
            return n >= std::numeric_limits<T>::min() && n <= std::numeric_limits<T>::max();
        }
    }
    template <class S>
    const S& expect(ValueType want) const {
        if (type() != want) throw_mismatch(want);
        return std::get<S>(v_);
    }
    [[noreturn]] void throw_mismatch(ValueType want) const;

    Storage v_;
};

/// A column of a row, by 0-based index or by name.
class Column {
  public:
    /// By 0-based index.
    Column(std::size_t index) noexcept : index_(index) {}
    /// By 0-based index (so that a literal `0` works).
    Column(int index) noexcept : index_(static_cast<std::size_t>(index)) {}
    /// By name, as the query spells it (`SELECT count(*) AS n` → "n").
    Column(std::string_view name) noexcept : name_(name), by_name_(true) {}
    /// By name.
    Column(const char* name) noexcept : name_(name), by_name_(true) {}

    /// True when the column is named, false when indexed.
    bool by_name() const noexcept { return by_name_; }
    /// The index (meaningful when !by_name()).
    std::size_t index() const noexcept { return index_; }
    /// The name (meaningful when by_name()); it views the caller's string.
    std::string_view name() const noexcept { return name_; }

  private:
    std::size_t index_ = 0;
    std::string_view name_;
    bool by_name_ = false;
};

/// One result row, materialised: it owns its values and stays valid after the statement that
/// produced it is reset or destroyed. Rows of one query share their column names. Not
/// synchronised; safe to read from several threads when nobody modifies it.
class Row {
  public:
    /// A row without columns.
    Row() = default;
    /// Used by Statement; `columns` has one name per value.
    Row(std::shared_ptr<const std::vector<std::string>> columns, std::vector<Value> values) noexcept
        : columns_(std::move(columns)), values_(std::move(values)) {}

    /// Number of columns.
    std::size_t size() const noexcept { return values_.size(); }
    /// The column names, in order.
    const std::vector<std::string>& columns() const noexcept;
    /// The value of a column. Throws TypeMismatch for an index out of range or an unknown name.
    const Value& at(Column column) const;
    /// The value of a column converted with `Value::as<T>()`; throws TypeMismatch.
    template <class T>
    T get(Column column) const {
        return at(column).as<T>();
    }

    /// Equal values in the same order (column names are not compared).
    friend bool operator==(const Row& a, const Row& b) noexcept { return a.values_ == b.values_; }

  private:
    std::shared_ptr<const std::vector<std::string>> columns_;
    std::vector<Value> values_;
};

}  // namespace plexus::store
